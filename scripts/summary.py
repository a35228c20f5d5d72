from quakesnake import tabular
from quakesnake.evaluation import headline_table, summary_table
from quakesnake.runner import logged

with logged(snakemake):
    summary = summary_table(list(snakemake.input))
    tabular.write_table(summary, snakemake.output.summary)
    tabular.write_table(headline_table(summary), snakemake.output.headline)
