from quakesnake.magnitude import magnitude_files
from quakesnake.runner import logged
from quakesnake.traveltimes import configured_layers

with logged(snakemake) as log:
    events = magnitude_files(
        snakemake.input.events, snakemake.input.assignments, snakemake.input.stations,
        snakemake.input.waveform_status, snakemake.input.inventory,
        snakemake.output.events, snakemake.output.amplitudes, snakemake.params.magnitude,
        corrections_path=snakemake.input.corrections[0] if snakemake.input.corrections else None,
        layers=configured_layers(snakemake.input.velocity_model, snakemake.params.velocity_layers),
    )
    log.info("%d events, %d with ML", len(events), int(events["magnitude"].notna().sum()))
