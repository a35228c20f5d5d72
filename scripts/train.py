from quakesnake.runner import logged
from quakesnake.training import train

with logged(snakemake):
    train(
        [path.rsplit("/", 1)[0] for path in snakemake.input.metadata],
        snakemake.output.weights.rsplit("/", 1)[0],
        snakemake.params.training,
        num_threads=snakemake.threads,
    )
