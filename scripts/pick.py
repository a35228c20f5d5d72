from quakesnake.picking import pick_file
from quakesnake.runner import logged

with logged(snakemake):
    pick_file(
        snakemake.input.waveforms,
        snakemake.output.picks,
        snakemake.params.picker,
        day=snakemake.wildcards.day,
        picker_name=snakemake.wildcards.picker,
    )
