rule preprocess:
    input:
        waveforms="results/waveforms/{day}/{net}.{sta}.mseed",
    output:
        waveforms="results/preprocessed/{day}/{net}.{sta}.mseed",
    params:
        options=config["preprocess"],
    log:
        "logs/preprocess/{day}/{net}.{sta}.log",
    script:
        "../../scripts/preprocess.py"
