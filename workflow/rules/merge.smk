rule merge:
    input:
        station_pick_files,
    output:
        picks="results/picks/{picker}/{day}.parquet",
    log:
        "logs/merge/{picker}/{day}.log",
    script:
        "../../scripts/merge.py"
