from quakesnake.runner import logged
from quakesnake.training import build_dataset

with logged(snakemake):
    build_dataset(
        snakemake.input.picks,
        list(snakemake.input.waveforms),
        snakemake.output.metadata.rsplit("/", 1)[0],
        snakemake.params.training,
        day=snakemake.wildcards.day,
        preprocess=snakemake.params.preprocess,
        margin_s=snakemake.params.margin_s,
        real_noise_files=list(snakemake.input.real_noise),
    )
