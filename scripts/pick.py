from quakesnake.day_picking import pick_day
from quakesnake.runner import logged

with logged(snakemake):
    pick_day(
        snakemake.input.waveforms, snakemake.wildcards.day, snakemake.params.picker, snakemake.wildcards.picker,
        out_picks=snakemake.output.picks, out_station_picks=snakemake.output.stations,
        out_status=snakemake.output.status, cache_dir=snakemake.params.cache_dir,
        preprocess_options=snakemake.params.preprocess, margin_s=snakemake.params.margin_s,
        threads=snakemake.threads,
    )
