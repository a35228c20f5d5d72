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
        recorded_noise=snakemake.params.recorded_noise,
        # snakemake adapt's datasets (workflow/rules/adapt.smk): the round's other picks
        avoid_picks=snakemake.input.get("associated"),
        false_picks=snakemake.input.get("false_picks"),
        false_pick_traces_per_station_day=snakemake.params.get("false_pick_traces", 0),
        max_noise_fraction=snakemake.params.get("max_noise_fraction"),
    )
