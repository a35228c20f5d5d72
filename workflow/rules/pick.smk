rule pick:
    input:
        waveforms="results/preprocessed/{day}/{net}.{sta}.mseed",
    output:
        picks="results/picks/{picker}/{day}/{net}.{sta}.parquet",
    params:
        picker=lambda wildcards: config["pickers"][wildcards.picker],
    resources:
        gpu=lambda wildcards: int(config["pickers"][wildcards.picker]["type"] == "seisbench" and config["pickers"][wildcards.picker].get("device", "auto").startswith("cuda")),
    log:
        "logs/pick/{picker}/{day}/{net}.{sta}.log",
    benchmark:
        "logs/benchmarks/pick/{picker}/{day}/{net}.{sta}.tsv"
    script:
        "../../scripts/pick.py"
