from quakesnake import tabular
from quakesnake.association import associate_day, picks_around_day
from quakesnake.runner import logged
from quakesnake.traveltimes import configured_layers

with logged(snakemake) as log:
    day = snakemake.wildcards.day
    picks = picks_around_day([tabular.read_table(p) for p in snakemake.input.picks], day, snakemake.params.pad_s)
    events, assignments = associate_day(
        picks,
        tabular.read_stations(snakemake.input.stations),
        day,
        snakemake.params.associator,
        configured_layers(snakemake.input.velocity_model, snakemake.params.velocity_layers),
        name=snakemake.wildcards.associator,
    )
    log.info("%d picks -> %d events, %d assigned picks", len(picks), len(events), len(assignments))
    tabular.write_table(events, snakemake.output.events)
    tabular.write_table(assignments, snakemake.output.assignments)
