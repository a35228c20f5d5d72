from quakesnake.magnitude import magnitude_files
from quakesnake.runner import logged

with logged(snakemake) as log:
    events = magnitude_files(
        snakemake.input.events, snakemake.input.assignments, snakemake.input.stations,
        snakemake.input.waveform_status, snakemake.input.inventory,
        snakemake.output.events, snakemake.output.amplitudes, snakemake.params.magnitude,
    )
    log.info("%d events, %d with ML", len(events), int(events["magnitude"].notna().sum()))
