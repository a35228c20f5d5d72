# Local magnitude: Wood–Anderson amplitudes on the raw station-days of the stations that picked
# each event. The day's download status says which station-days hold data; their miniSEED lies
# beside it. (Listing the 150 miniSEED files as inputs would cost the DAG 150 look-ups per job;
# a replaced station-day reaches this rule anyway, through its picks and the day's events.) Where
# jobs share no file system (a default storage provider, as on Ada cloud), the miniSEED files are
# inputs after all, so that Snakemake copies them into the job.


rule magnitude:
    input:
        events=LOCATED_EVENTS,
        assignments=LOCATED_ASSIGNMENTS,
        stations="results/stations.csv",
        waveform_status="results/waveforms/{day}/status.csv",
        inventory="results/waveforms/{day}/inventory.xml",
        waveforms=[] if SHARED_FILESYSTEM else raw_waveforms,
        corrections=STATION_CORRECTION_FILES,
        velocity_model=VELOCITY_MODEL_FILES,
    output:
        events="results/magnitudes/{picker}/{associator}/{day}.parquet",
        amplitudes="results/amplitudes/{picker}/{associator}/{day}.parquet",
    params:
        # the corrections file is an input (editing it reruns the rule), not a param
        magnitude={key: value for key, value in config["magnitude"].items() if key != "station_corrections"}
        | {"channel_priority": config["preprocess"]["channel_priority"]},
        velocity_layers=VELOCITY_LAYERS,
    log:
        "logs/magnitude/{picker}/{associator}/{day}.log",
    benchmark:
        "logs/benchmarks/magnitude/{picker}/{associator}/{day}.tsv"
    conda:
        SOFTWARE
    script:
        "../../scripts/magnitude.py"
