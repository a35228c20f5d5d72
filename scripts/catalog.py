from quakesnake import io
from quakesnake.export import to_obspy_catalog, write_catalog_csv, write_catalog_quakeml, write_nlloc_obs
from quakesnake.magnitude import AMPLITUDE_COLUMNS
from quakesnake.runner import logged

with logged(snakemake) as log:
    events = io.concat_tables([io.read_table(p) for p in snakemake.input.events], io.EVENT_COLUMNS)
    assignments = io.concat_tables([io.read_table(p) for p in snakemake.input.assignments], io.ASSIGNMENT_COLUMNS)
    amplitudes = io.concat_tables([io.read_table(p) for p in snakemake.input.amplitudes], AMPLITUDE_COLUMNS)
    log.info("catalog: %d events (%d with ML), %d assigned picks, %d amplitudes", len(events),
             int(events["magnitude"].notna().sum()), len(assignments), len(amplitudes))
    for table, path in [(events, snakemake.output.events), (assignments, snakemake.output.assignments), (amplitudes, snakemake.output.amplitudes)]:
        io.write_table(table, path)
    write_catalog_csv(events, snakemake.output.csv)
    catalog = to_obspy_catalog(events, assignments, io.read_stations(snakemake.input.stations), amplitudes)
    write_catalog_quakeml(catalog, snakemake.output.quakeml)
    write_nlloc_obs(catalog, snakemake.output.nlloc)
