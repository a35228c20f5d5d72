# The download stage: one job per day fetches every station-day of the network (raw counts), the
# day's StationXML and a status table ("ok" or "no_data" per station-day) from the configured
# source: synthetic, fdsn or sds. Station-days arrive `threads` at a time (fdsn: at least 4, as
# requests wait on the network, not on a core).


rule station_table:
    output:
        "results/stations.csv",
    params:
        # Without the fdsn station list's `client` column: which data centre answered first
        # must not make the associations that read this table stale.
        stations=STATIONS.drop(columns="client", errors="ignore").to_dict("records"),
    log:
        "logs/station_table.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/station_table.py"


rule scenario:
    input:
        stations="results/stations.csv",
        velocity_model=VELOCITY_MODEL_FILES,
        catalog=TWIN_CATALOG_FILES,
    output:
        events="results/truth/events.csv",
        picks="results/truth/picks.csv",
        stations="results/truth/stations.csv",
        # every generated event (ML, visible-pick count n_visible), catalogued or not: evaluation
        # tells real uncatalogued detections from false ones by it
        events_all="results/truth/events_all.csv",
        arrivals="results/truth/arrivals.parquet",
    params:
        synthetic=config["synthetic"],
        velocity_layers=VELOCITY_LAYERS,
        days=DAYS,
    log:
        "logs/scenario.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/scenario.py"


rule download:
    input:
        arrivals=["results/truth/arrivals.parquet"] if config["source"]["type"] == "synthetic" else [],
    output:
        # status and inventory first: Snakemake finds which output a consumer's input is by trying
        # the outputs in order, and most consumers ask for these two
        status="results/waveforms/{day}/status.csv",
        inventory="results/waveforms/{day}/inventory.xml",
        waveforms=expand("results/waveforms/{{day}}/{code}.mseed", code=SHARD_CODES),
    params:
        # Synthetic data is a function of these settings: a change regenerates it. A real
        # station-day is the same whichever client, timeout or station-table column fetched it,
        # so those params take `output` (Snakemake then leaves them out of its rerun triggers)
        # and a changed client list never downloads again what is on disk. The EIDA token's
        # path stays out of params altogether (they are stored in .snakemake/metadata).
        synthetic=config["synthetic"] if config["source"]["type"] == "synthetic" else None,
        stations=(lambda wildcards: STATION_LIST)
        if config["source"]["type"] == "synthetic"
        else (lambda wildcards, output: STATION_LIST),
        source=lambda wildcards, output: {k: v for k, v in config["source"].items() if k != "eida_token"},
        margin_s=config["source"]["margin_s"],
        staging_dir="results/cache/waveforms",
    threads: 1
    log:
        "logs/download/{day}.log",
    benchmark:
        "logs/benchmarks/download/{day}.tsv"
    conda:
        SOFTWARE
    script:
        "../../scripts/download.py"
