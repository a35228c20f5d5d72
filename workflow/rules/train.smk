# The training stage: `snakemake train` builds a SeisBench dataset per day from the reference
# catalog and the raw station-days (preprocessed in memory, as the pick stage does), with real noise
# from training.real_noise.files (rule inputs: editing them rebuilds the datasets), then trains (or
# fine-tunes) the configured model.


rule training_dataset:
    input:
        waveforms=raw_waveforms,
        picks=f"{REFERENCE_DIR}/picks.csv",
        real_noise=real_noise_files,
    output:
        metadata="results/training/datasets/{day}/metadata.csv",
        waveforms="results/training/datasets/{day}/waveforms.hdf5",
    params:
        training=lambda wildcards: training_dataset_settings(config["training"]),
        preprocess=config["preprocess"],
        margin_s=config["source"]["margin_s"],
        recorded_noise=RECORDED_NOISE,
    log:
        "logs/training_dataset/{day}.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/training_dataset.py"


rule train:
    input:
        metadata=day_files("results/training/datasets/{day}/metadata.csv"),
        waveforms=day_files("results/training/datasets/{day}/waveforms.hdf5"),
    output:
        weights="results/training/model/model.pt",
        model_config="results/training/model/model.json",
        history="results/training/model/history.csv",
        metrics=report("results/training/model/metrics.json", category="Training", caption="../report/training.rst"),
        curve=report("results/training/model/training_curve.png", category="Training", caption="../report/training.rst"),
    params:
        training=config["training"],
    # All the cores: Snakemake lowers a rule's threads to --cores (a number, not workflow.cores,
    # which is unset when `snakemake --report` reads the rules).
    threads: 1024
    resources:
        gpu=0,
    log:
        "logs/train.log",
    benchmark:
        "logs/benchmarks/train.tsv"
    conda:
        SOFTWARE
    script:
        "../../scripts/train.py"
