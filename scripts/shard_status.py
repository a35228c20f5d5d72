from quakesnake import tabular
from quakesnake.runner import logged

with logged(snakemake) as log:
    table = tabular.shard_status_table(snakemake.input)
    tabular.write_table(table, snakemake.output.shards)
    tabular.write_table(tabular.shard_status_summary(table), snakemake.output.summary)
    for (stage, status), n in table.groupby(["stage", "status"]).size().items():
        log.info("%s %s: %d shard(s)", stage, status, n)
