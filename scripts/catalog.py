from quakesnake import io
from quakesnake.export import write_catalog_csv, write_quakeml
from quakesnake.runner import logged

with logged(snakemake) as log:
    events = io.concat_tables([io.read_table(p) for p in snakemake.input.events], io.EVENT_COLUMNS)
    assignments = io.concat_tables([io.read_table(p) for p in snakemake.input.assignments], io.ASSIGNMENT_COLUMNS)
    log.info("catalog: %d events, %d assigned picks", len(events), len(assignments))
    io.write_table(events, snakemake.output.events)
    io.write_table(assignments, snakemake.output.assignments)
    write_catalog_csv(events, snakemake.output.csv)
    write_quakeml(events, assignments, io.read_stations(snakemake.input.stations), snakemake.output.quakeml)
