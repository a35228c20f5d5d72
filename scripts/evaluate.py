from quakesnake.evaluation import evaluate_files
from quakesnake.runner import logged

with logged(snakemake) as log:
    metrics = evaluate_files(
        events_path=snakemake.input.events,
        pick_paths=list(snakemake.input.picks),
        reference_dir=snakemake.params.reference_dir,
        days=snakemake.params.days,
        metrics_path=snakemake.output.metrics,
        event_map_path=snakemake.output.event_map,
        pick_residuals_path=snakemake.output.pick_residuals,
        **snakemake.params.tolerances,
    )
    log.info("metrics: %s", metrics)
