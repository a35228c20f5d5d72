# Local magnitude: Wood–Anderson amplitudes on the raw station-days of the stations that picked
# each event. The day's download status says which station-days hold data; their miniSEED lies
# beside it. (Listing the 150 miniSEED files as inputs would cost the DAG 150 look-ups per job;
# a replaced station-day reaches this rule anyway, through its picks and the day's events.) Where
# jobs share no file system (a default storage provider, as on Ada cloud), the miniSEED files are
# inputs after all, so that Snakemake copies them into the job.


rule magnitude:
    input:
        events="results/events/{picker}/{associator}/{day}.parquet",
        assignments="results/assignments/{picker}/{associator}/{day}.parquet",
        stations="results/stations.csv",
        waveform_status="results/waveforms/{day}/status.csv",
        inventory="results/waveforms/{day}/inventory.xml",
        waveforms=[] if SHARED_FILESYSTEM else raw_waveforms,
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
