from quakesnake.adapt import fine_tune_round
from quakesnake.runner import logged

with logged(snakemake):
    fine_tune_round(
        int(snakemake.wildcards.round),
        [path.rsplit("/", 1)[0] for path in snakemake.input.metadata],
        [path.rsplit("/", 1)[0] for path in snakemake.input.replay],
        snakemake.output.weights.rsplit("/", 1)[0],
        snakemake.params.training,
        replay_fraction=snakemake.params.replay_fraction,
        num_threads=snakemake.threads,
    )
