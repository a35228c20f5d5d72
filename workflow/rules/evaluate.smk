rule evaluate:
    input:
        events="results/catalog/{picker}/{associator}.parquet",
        picks=day_files("results/picks/{picker}/{day}.parquet"),
        reference=[f"{REFERENCE_DIR}/{name}.csv" for name in ("events", "picks", "stations")],
    output:
        metrics=report(
            "results/evaluation/{picker}/{associator}/metrics.json",
            category="Evaluation",
            subcategory="{picker} + {associator}",
            caption="../report/metrics.rst",
        ),
        event_map=report(
            "results/evaluation/{picker}/{associator}/event_map.png",
            category="Evaluation",
            subcategory="{picker} + {associator}",
            caption="../report/event_map.rst",
        ),
        pick_residuals=report(
            "results/evaluation/{picker}/{associator}/pick_residuals.png",
            category="Evaluation",
            subcategory="{picker} + {associator}",
            caption="../report/pick_residuals.rst",
        ),
    params:
        reference_dir=lambda wildcards, input: str(Path(input.reference[0]).parent),
        days=DAYS,
        tolerances=config["evaluation"],
    log:
        "logs/evaluate/{picker}/{associator}.log",
    script:
        "../../scripts/evaluate.py"


rule summary:
    input:
        expand(
            "results/evaluation/{picker}/{associator}/metrics.json",
            picker=PICKERS,
            associator=ASSOCIATORS,
        ),
    output:
        report(
            "results/evaluation/summary.csv",
            category="Evaluation",
            caption="../report/summary.rst",
        ),
    log:
        "logs/summary.log",
    script:
        "../../scripts/summary.py"
