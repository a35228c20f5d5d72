# Local magnitude: Wood–Anderson amplitudes on the raw station-days of the stations that picked
# each event (a station-day without data is a 0-byte file and is skipped).


rule magnitude:
    input:
        events="results/events/{picker}/{associator}/{day}.parquet",
        assignments="results/assignments/{picker}/{associator}/{day}.parquet",
        stations="results/stations.csv",
        waveforms=lambda wildcards: [f"results/waveforms/{wildcards.day}/{net}.{sta}.mseed" for net, sta in station_codes(wildcards.day)],
        inventories=lambda wildcards: [f"results/waveforms/{wildcards.day}/{net}.{sta}.xml" for net, sta in station_codes(wildcards.day)],
        corrections=[config["magnitude"]["station_corrections"]] if config["magnitude"]["station_corrections"] else [],
    output:
        events="results/magnitudes/{picker}/{associator}/{day}.parquet",
        amplitudes="results/amplitudes/{picker}/{associator}/{day}.parquet",
    params:
        magnitude=config["magnitude"] | {"channel_priority": config["preprocess"]["channel_priority"]},
    log:
        "logs/magnitude/{picker}/{associator}/{day}.log",
    benchmark:
        "logs/benchmarks/magnitude/{picker}/{associator}/{day}.tsv"
    script:
        "../../scripts/magnitude.py"
