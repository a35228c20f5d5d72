# Evaluation against the reference, the report's figures and tables, and the candidate new events.
# evaluate decides once what became of every detection (matched, real but uncatalogued, false,
# or unmatched); the figure and review rules read its tables and never match again.

# The synthetic generator's complete event list tells real uncatalogued events from false ones;
# a real reference has no such list, and its unmatched detections are candidates for review.
GENERATED_EVENTS = [] if config["reference"] else ["results/truth/events_all.csv"]
COMBINATION = "{picker} + {associator}"


rule evaluate:
    input:
        events="results/catalog/{picker}/{associator}.parquet",
        picks=day_files("results/picks/{picker}/{day}.parquet"),
        reference=[f"{REFERENCE_DIR}/{name}.csv" for name in ("events", "picks", "stations")],
        generated_events=GENERATED_EVENTS,
    output:
        metrics=report(
            "results/evaluation/{picker}/{associator}/metrics.json",
            category=COMBINATION,
            subcategory="Scores",
            caption="../report/metrics.rst",
        ),
        detections="results/evaluation/{picker}/{associator}/detections.parquet",
        reference_events="results/evaluation/{picker}/{associator}/reference_events.parquet",
        pick_matches="results/evaluation/{picker}/{associator}/pick_matches.parquet",
    params:
        reference_dir=lambda wildcards, input: str(Path(input.reference[0]).parent),
        days=DAYS,
        tolerances=config["evaluation"],
        magnitude_statistics=config["report"],
    log:
        "logs/evaluate/{picker}/{associator}.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/evaluate.py"


rule report_figures:
    input:
        metrics=rules.evaluate.output.metrics,
        detections=rules.evaluate.output.detections,
        reference_events=rules.evaluate.output.reference_events,
        pick_matches=rules.evaluate.output.pick_matches,
        assignments="results/catalog/{picker}/{associator}.assignments.parquet",
        picks=day_files("results/picks/{picker}/{day}.parquet"),
        stations="results/stations.csv",
        reference_picks=f"{REFERENCE_DIR}/picks.csv",
    output:
        event_map=report(
            "results/evaluation/{picker}/{associator}/event_map.png",
            category=COMBINATION,
            subcategory="Events",
            caption="../report/event_map.rst",
        ),
        frequency_magnitude=report(
            "results/evaluation/{picker}/{associator}/frequency_magnitude.png",
            category=COMBINATION,
            subcategory="Events",
            caption="../report/frequency_magnitude.rst",
        ),
        cumulative_events=report(
            "results/evaluation/{picker}/{associator}/cumulative_events.png",
            category=COMBINATION,
            subcategory="Events",
            caption="../report/cumulative_events.rst",
        ),
        magnitudes=report(
            "results/evaluation/{picker}/{associator}/magnitudes.png",
            category=COMBINATION,
            subcategory="Events",
            caption="../report/magnitudes.rst",
        ),
        pick_residuals=report(
            "results/evaluation/{picker}/{associator}/pick_residuals.png",
            category=COMBINATION,
            subcategory="Picks and stations",
            caption="../report/pick_residuals.rst",
        ),
        stations=report(
            "results/evaluation/{picker}/{associator}/stations.csv",
            category=COMBINATION,
            subcategory="Picks and stations",
            caption="../report/stations.rst",
        ),
    params:
        days=DAYS,
    log:
        "logs/report_figures/{picker}/{associator}.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/report_figures.py"


rule review:
    input:
        detections=rules.evaluate.output.detections,
        reference_events=rules.evaluate.output.reference_events,
        events=rules.evaluate.input.events,
        assignments=rules.report_figures.input.assignments,
        amplitudes="results/catalog/{picker}/{associator}.amplitudes.parquet",
        stations="results/stations.csv",
        # the days' status tables (the raw station-days lie beside them; see magnitude.smk)
        waveform_status=day_files("results/waveforms/{day}/status.csv"),
        waveforms=[] if SHARED_FILESYSTEM else [f"results/waveforms/{day}/{code}.mseed" for day in DAYS for code in SHARD_CODES],
        velocity_model=VELOCITY_MODEL_FILES,
    output:
        candidates=report(
            "results/review/{picker}/{associator}/candidates.csv",
            category=COMBINATION,
            subcategory="Candidate new events",
            caption="../report/candidates.rst",
        ),
        quakeml="results/review/{picker}/{associator}/candidates.xml",
        record_sections=report(
            directory("results/review/{picker}/{associator}/record_sections"),
            patterns=["{name}.png"],
            category=COMBINATION,
            subcategory="Candidate new events",
            caption="../report/record_section.rst",
        ),
    params:
        review=config["review"],
        velocity_layers=VELOCITY_LAYERS,
        channel_priority=config["preprocess"]["channel_priority"],
    log:
        "logs/review/{picker}/{associator}.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/review.py"


rule summary:
    input:
        expand(
            "results/evaluation/{picker}/{associator}/metrics.json",
            picker=PICKERS,
            associator=ASSOCIATORS,
        ),
    output:
        summary=report(
            "results/evaluation/summary.csv",
            category="Overview",
            caption="../report/summary.rst",
        ),
        headline="results/evaluation/headline.csv",
    log:
        "logs/summary.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/summary.py"
