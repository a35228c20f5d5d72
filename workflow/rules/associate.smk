rule associate:
    input:
        picks=neighbour_day_picks,
        stations="results/stations.csv",
    output:
        events="results/events/{picker}/{associator}/{day}.parquet",
        assignments="results/assignments/{picker}/{associator}/{day}.parquet",
    params:
        associator=lambda wildcards: config["associators"][wildcards.associator],
        velocity_model=config["velocity_model"],
        pad_s=config["association"]["pad_s"],
    log:
        "logs/associate/{picker}/{associator}/{day}.log",
    benchmark:
        "logs/benchmarks/associate/{picker}/{associator}/{day}.tsv"
    script:
        "../../scripts/associate.py"


rule catalog:
    input:
        events=day_files("results/magnitudes/{picker}/{associator}/{day}.parquet"),
        assignments=day_files("results/assignments/{picker}/{associator}/{day}.parquet"),
        amplitudes=day_files("results/amplitudes/{picker}/{associator}/{day}.parquet"),
        stations=rules.associate.input.stations,
    output:
        events="results/catalog/{picker}/{associator}.parquet",
        assignments="results/catalog/{picker}/{associator}.assignments.parquet",
        amplitudes="results/catalog/{picker}/{associator}.amplitudes.parquet",
        csv="results/catalog/{picker}/{associator}.csv",
        quakeml="results/catalog/{picker}/{associator}.xml",
        nlloc=directory("results/catalog/{picker}/{associator}.nlloc"),
    log:
        "logs/catalog/{picker}/{associator}.log",
    script:
        "../../scripts/catalog.py"
