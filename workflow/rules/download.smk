# The download stage: one station-day of raw waveforms (counts) plus its StationXML.


rule station_table:
    output:
        "results/stations.csv",
    params:
        stations=STATIONS.to_dict("records"),
    log:
        "logs/station_table.log",
    script:
        "../../scripts/station_table.py"


rule scenario:
    input:
        stations="results/stations.csv",
    output:
        events="results/truth/events.csv",
        picks="results/truth/picks.csv",
        stations="results/truth/stations.csv",
        arrivals="results/truth/arrivals.parquet",
    params:
        synthetic=config["synthetic"],
        velocity_model=config["velocity_model"],
        days=DAYS,
    log:
        "logs/scenario.log",
    script:
        "../../scripts/scenario.py"


rule download:
    input:
        arrivals="results/truth/arrivals.parquet",
    output:
        waveforms="results/waveforms/{day}/{net}.{sta}.mseed",
        inventory="results/waveforms/{day}/{net}.{sta}.xml",
    params:
        synthetic=config["synthetic"],
        station=lambda wildcards: station_record(wildcards.net, wildcards.sta),
        margin_s=config["source"]["margin_s"],
    log:
        "logs/download/{day}/{net}.{sta}.log",
    benchmark:
        "logs/benchmarks/download/{day}/{net}.{sta}.tsv"
    script:
        "../../scripts/download.py"
