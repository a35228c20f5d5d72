from quakesnake import io
from quakesnake.evaluation import headline_table, summary_table
from quakesnake.runner import logged

with logged(snakemake):
    summary = summary_table(list(snakemake.input))
    io.write_table(summary, snakemake.output.summary)
    io.write_table(headline_table(summary), snakemake.output.headline)
