# `snakemake adapt`: self-training on the run's own days (quakesnake.adapt). Round r picks every day
# with the picker adapt-round{r} (the pick stage: the model of round r-1, or adapt.picker in round
# 1), associates and locates with adapt.associator (the associate and locate stages), keeps the
# picks of well-constrained events as labels (adapt_labels), cuts a dataset per day from them (the
# training_dataset rule with the labels as reference) and fine-tunes the model of round r-1 (the
# train rule). adapt_report tabulates the rounds and copies the last round's model beside them.
from quakesnake.adapt import ROUNDS_DIR, training_settings_of_round

ROUND_PICKER = round_picker_name("{round}")
ROUND_PICKS = f"results/picks/{ROUND_PICKER}/{{day}}.parquet"
ROUND_EVENTS = LOCATED_EVENTS.format(picker=ROUND_PICKER, associator=ADAPT_ASSOCIATOR, day="{day}")
ROUND_ASSIGNMENTS = LOCATED_ASSIGNMENTS.format(picker=ROUND_PICKER, associator=ADAPT_ASSOCIATOR, day="{day}")
ROUND_DIR = f"{ROUNDS_DIR}/round{{round}}"
ROUND_LABELS = f"{ROUND_DIR}/labels/{{day}}.csv"
ROUND_DATASET = f"{ROUND_DIR}/datasets/{{day}}"


use rule pick as adapt_pick with:
    wildcard_constraints:
        picker=ROUND_PICKER_NAMES,


use rule associate as adapt_associate with:
    wildcard_constraints:
        picker=ROUND_PICKER_NAMES,


use rule locate as adapt_locate with:
    wildcard_constraints:
        picker=ROUND_PICKER_NAMES,


rule adapt_labels:
    input:
        picks=ROUND_PICKS,
        events=ROUND_EVENTS,
        assignments=ROUND_ASSIGNMENTS,
    output:
        labels=ROUND_LABELS,
        associated=f"{ROUND_DIR}/labels/{{day}}.associated.csv",
        false_picks=f"{ROUND_DIR}/labels/{{day}}.false.csv",
        counts=f"{ROUND_DIR}/labels/{{day}}.json",
    params:
        labels=ADAPT["labels"],
    localrule: True  # reads three small tables
    log:
        "logs/adapt/labels/round{round}/{day}.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/adapt_labels.py"


use rule training_dataset as adapt_dataset with:
    input:
        waveforms=raw_waveforms,
        picks=rules.adapt_labels.output.labels,
        real_noise=real_noise_files,
        associated=rules.adapt_labels.output.associated,
        false_picks=rules.adapt_labels.output.false_picks,
    output:
        metadata=f"{ROUND_DATASET}/metadata.csv",
        waveforms=f"{ROUND_DATASET}/waveforms.hdf5",
    params:
        training=lambda wildcards: training_dataset_settings(
            training_settings_of_round(config["training"], ADAPT, int(wildcards.round))),
        preprocess=config["preprocess"],
        margin_s=config["source"]["margin_s"],
        recorded_noise=RECORDED_NOISE,
        false_pick_traces=ADAPT["hard_negatives_per_station_day"],
        max_noise_fraction=ADAPT["max_noise_fraction"],
    log:
        "logs/adapt/dataset/round{round}/{day}.log",


rule adapt_train:
    input:
        metadata=day_files(f"{ROUND_DATASET}/metadata.csv"),
        waveforms=day_files(f"{ROUND_DATASET}/waveforms.hdf5"),
        replay=replay_metadata,
        init_weights=lambda wildcards: previous_model_files(int(wildcards.round)),
    output:
        weights=f"{ROUND_DIR}/model/model.pt",
        model_config=f"{ROUND_DIR}/model/model.json",
        history=f"{ROUND_DIR}/model/history.csv",
        metrics=f"{ROUND_DIR}/model/metrics.json",
        curve=f"{ROUND_DIR}/model/training_curve.png",
    params:
        training=lambda wildcards: training_settings_of_round(config["training"], ADAPT, int(wildcards.round)),
        replay_fraction=ADAPT["replay_fraction"],
    threads: 1024  # all the cores, as the train rule
    resources:
        gpu=0,
    log:
        "logs/adapt/train/round{round}.log",
    benchmark:
        "logs/benchmarks/adapt/train/round{round}.tsv"
    conda:
        SOFTWARE
    script:
        "../../scripts/adapt_train.py"


rule adapt_report:
    input:
        picks=expand(ROUND_PICKS, round=ADAPT_ROUNDS, day=DAYS),
        events=expand(ROUND_EVENTS, round=ADAPT_ROUNDS, day=DAYS),
        labels=expand(ROUND_LABELS, round=ADAPT_ROUNDS, day=DAYS),
        datasets=expand(f"{ROUND_DATASET}/metadata.csv", round=ADAPT_ROUNDS, day=DAYS),
        model=[f"{ROUNDS_DIR}/round{r}/model/{name}" for r in ADAPT_ROUNDS
               for name in ("model.json", "model.pt", "metrics.json", "history.csv", "training_curve.png")],
    output:
        rounds=report(f"{ROUNDS_DIR}/rounds.csv", category="Adaptation", caption="../report/adapt.rst"),
        model=multiext(f"{ROUNDS_DIR}/model/model", ".json", ".pt"),
        metrics=f"{ROUNDS_DIR}/model/metrics.json",
        history=f"{ROUNDS_DIR}/model/history.csv",
        curve=f"{ROUNDS_DIR}/model/training_curve.png",
    params:
        rounds=ADAPT_ROUNDS,
        days=DAYS,
    localrule: True
    log:
        "logs/adapt/report.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/adapt_report.py"


rule adapt:
    input:
        rules.adapt_report.output,
    localrule: True
