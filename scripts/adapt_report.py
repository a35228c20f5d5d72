from quakesnake.adapt import write_report
from quakesnake.runner import logged

with logged(snakemake):
    write_report(snakemake.params.rounds, len(snakemake.params.days), snakemake.input, snakemake.output)
