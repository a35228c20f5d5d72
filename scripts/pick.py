from quakesnake.picking import pick_day, raw_station_days
from quakesnake.runner import logged

with logged(snakemake):
    pick_day(
        raw_station_days(snakemake.input.waveform_status, snakemake.output.stations),
        snakemake.wildcards.day, snakemake.params.picker, snakemake.wildcards.picker,
        out_picks=snakemake.output.picks, out_station_picks=snakemake.output.stations,
        out_status=snakemake.output.status, cache_dir=snakemake.params.cache_dir,
        preprocess_options=snakemake.params.preprocess, margin_s=snakemake.params.margin_s,
        threads=snakemake.threads,
    )
