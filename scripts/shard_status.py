from quakesnake import io
from quakesnake.runner import logged

with logged(snakemake) as log:
    table = io.shard_status_table(snakemake.input)
    io.write_table(table, snakemake.output.shards)
    io.write_table(io.shard_status_summary(table), snakemake.output.summary)
    for (stage, status), n in table.groupby(["stage", "status"]).size().items():
        log.info("%s %s: %d shard(s)", stage, status, n)
