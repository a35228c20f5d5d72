from quakesnake.preprocess import preprocess_file
from quakesnake.runner import logged

with logged(snakemake):
    preprocess_file(snakemake.input.waveforms, snakemake.output.waveforms, **snakemake.params.options)
