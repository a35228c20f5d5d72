from quakesnake.preprocess import preprocess_file
from quakesnake.runner import logged

with logged(snakemake):
    preprocess_file(
        snakemake.input.waveforms,
        snakemake.output.waveforms,
        snakemake.output.status,
        day=snakemake.wildcards.day,
        margin_s=snakemake.params.margin_s,
        station_id=f"{snakemake.wildcards.net}.{snakemake.wildcards.sta}",
        **snakemake.params.options,
    )
