from quakesnake import tabular
from quakesnake.export import to_obspy_catalog, write_catalog_csv, write_catalog_quakeml, write_nlloc_obs
from quakesnake.magnitude import AMPLITUDE_COLUMNS
from quakesnake.runner import logged

with logged(snakemake) as log:
    events = tabular.concat_tables([tabular.read_table(p) for p in snakemake.input.events], tabular.EVENT_COLUMNS)
    assignments = tabular.concat_tables([tabular.read_table(p) for p in snakemake.input.assignments], tabular.ASSIGNMENT_COLUMNS)
    amplitudes = tabular.concat_tables([tabular.read_table(p) for p in snakemake.input.amplitudes], AMPLITUDE_COLUMNS)
    log.info("catalog: %d events (%d with ML), %d assigned picks, %d amplitudes", len(events),
             int(events["magnitude"].notna().sum()), len(assignments), len(amplitudes))
    for table, path in [(events, snakemake.output.events), (assignments, snakemake.output.assignments), (amplitudes, snakemake.output.amplitudes)]:
        tabular.write_table(table, path)
    write_catalog_csv(events, snakemake.output.csv)
    catalog = to_obspy_catalog(events, assignments, tabular.read_stations(snakemake.input.stations), amplitudes)
    write_catalog_quakeml(catalog, snakemake.output.quakeml)
    write_nlloc_obs(catalog, snakemake.output.nlloc)
