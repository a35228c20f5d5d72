rule preprocess:
    input:
        waveforms="results/waveforms/{day}/{net}.{sta}.mseed",
    output:
        waveforms="results/preprocessed/{day}/{net}.{sta}.mseed",
        status="results/preprocessed/{day}/{net}.{sta}.status.json",
    params:
        options=config["preprocess"],
        margin_s=config["source"]["margin_s"],
    log:
        "logs/preprocess/{day}/{net}.{sta}.log",
    script:
        "../../scripts/preprocess.py"


# Which shards yielded nothing, and why: one row per shard and stage. Run by Snakemake itself
# (localrule): reading small JSON files is no job for a cluster queue.
rule shard_status:
    input:
        [
            f"results/{folder}/{day}/{net}.{sta}.status.json"
            for day in DAYS
            for net, sta in station_codes(day)
            for folder in ("waveforms", "preprocessed")
        ],
    output:
        "results/status/shards.csv",
    localrule: True
    log:
        "logs/shard_status.log",
    script:
        "../../scripts/shard_status.py"
