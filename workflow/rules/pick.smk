# The pick stage: one job per picker and day preprocesses each raw station-day in memory and picks
# it, with one model load for the whole day; unchanged station-days come from a content-keyed
# cache (quakesnake.picking.shards), so replacing one station-day repicks only that one.


rule pick:
    wildcard_constraints:
        picker=RUN_PICKER,
    input:
        # the day's status table (the raw files lie beside it) and any raw file replaced since
        waveform_status="results/waveforms/{day}/status.csv",
        replaced=replaced_waveforms,
        # a round of `snakemake adapt` picks with the weights the previous round trained
        weights=adapt_round_weights,
    output:
        # the day's picks first: association asks for them (see the note in download.smk)
        picks="results/picks/{picker}/{day}.parquet",
        status="results/picks/{picker}/{day}.status.csv",
        stations=expand("results/picks/{{picker}}/{{day}}/{code}.parquet", code=SHARD_CODES),
    params:
        picker=lambda wildcards: PICKER_ENTRIES[wildcards.picker],
        preprocess=config["preprocess"],
        margin_s=config["source"]["margin_s"],
        cache_dir=lambda wildcards: f"results/cache/picks/{wildcards.picker}/{wildcards.day}",
    threads: 1  # a job per core packs a workstation best; a GPU node's profile gives it 8
    priority: pick_priority
    resources:
        gpu=lambda wildcards: int(asks_for_cuda(PICKER_ENTRIES[wildcards.picker])),
    log:
        "logs/pick/{picker}/{day}.log",
    benchmark:
        "logs/benchmarks/pick/{picker}/{day}.tsv"
    conda:
        SOFTWARE
    script:
        "../../scripts/pick.py"


# Which shards yielded nothing, and why: one row per shard and stage. Run by Snakemake itself
# (localrule): reading a table per day is no job for a cluster queue. Preprocessing is the same
# for every picker, so the first picker's status tables serve.
rule shard_status:
    input:
        [f"results/waveforms/{day}/status.csv" for day in DAYS]
        + [f"results/picks/{PICKERS[0]}/{day}.status.csv" for day in DAYS],
    output:
        shards="results/status/shards.csv",
        summary=report(
            "results/status/shard_summary.csv",
            category="Overview",
            caption="../report/shard_status.rst",
        ),
    localrule: True
    log:
        "logs/shard_status.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/shard_status.py"
