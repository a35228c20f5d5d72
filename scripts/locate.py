from quakesnake.location import locate_files
from quakesnake.runner import logged
from quakesnake.traveltimes import configured_layers

with logged(snakemake) as log:
    events = locate_files(
        snakemake.input.events, snakemake.input.assignments, snakemake.input.stations,
        configured_layers(snakemake.input.velocity_model, snakemake.params.velocity_layers),
        snakemake.output.events, snakemake.output.assignments, snakemake.params.relocation,
    )
    log.info("%d events, %d relocated", len(events), int(events["relocated"].sum()))
