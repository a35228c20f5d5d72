from quakesnake.evaluation import summary_table
from quakesnake.runner import logged

with logged(snakemake):
    summary_table(list(snakemake.input)).to_csv(snakemake.output[0], index=False)
