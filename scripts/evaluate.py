from quakesnake.evaluation import evaluate_files
from quakesnake.runner import logged

with logged(snakemake) as log:
    metrics = evaluate_files(
        events_path=snakemake.input.events,
        pick_paths=list(snakemake.input.picks),
        reference_dir=snakemake.params.reference_dir,
        days=snakemake.params.days,
        metrics_path=snakemake.output.metrics,
        detections_path=snakemake.output.detections,
        reference_events_path=snakemake.output.reference_events,
        pick_matches_path=snakemake.output.pick_matches,
        generated_events_path=snakemake.input.generated_events[0] if snakemake.input.generated_events else None,
        magnitude_statistics=snakemake.params.magnitude_statistics,
        **snakemake.params.tolerances,
    )
    log.info("metrics: %s", metrics)
