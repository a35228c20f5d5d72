from quakesnake.report_figures import report_figures_files
from quakesnake.runner import logged

with logged(snakemake):
    report_figures_files(
        metrics_path=snakemake.input.metrics,
        detections_path=snakemake.input.detections,
        reference_events_path=snakemake.input.reference_events,
        pick_matches_path=snakemake.input.pick_matches,
        assignments_path=snakemake.input.assignments,
        pick_paths=list(snakemake.input.picks),
        stations_path=snakemake.input.stations,
        reference_picks_path=snakemake.input.reference_picks,
        days=snakemake.params.days,
        outputs=dict(snakemake.output.items()),
        label=f"{snakemake.wildcards.picker} + {snakemake.wildcards.associator}",
    )
