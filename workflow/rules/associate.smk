rule associate:
    wildcard_constraints:
        picker=RUN_PICKER,
    input:
        picks=neighbour_day_picks,
        stations="results/stations.csv",
        velocity_model=VELOCITY_MODEL_FILES,
    output:
        events="results/events/{picker}/{associator}/{day}.parquet",
        assignments="results/assignments/{picker}/{associator}/{day}.parquet",
    params:
        associator=lambda wildcards: config["associators"][wildcards.associator],
        velocity_layers=VELOCITY_LAYERS,
        pad_s=config["association"]["pad_s"],
    log:
        "logs/associate/{picker}/{associator}/{day}.log",
    benchmark:
        "logs/benchmarks/associate/{picker}/{associator}/{day}.tsv"
    conda:
        SOFTWARE
    script:
        "../../scripts/associate.py"


# Relocation in the 1D model (on by default, see common.smk): the events get the
# relocated hypocentre and its uncertainties, the assignments the residuals of that solution.
rule locate:
    wildcard_constraints:
        picker=RUN_PICKER,
    input:
        events=rules.associate.output.events,
        assignments=rules.associate.output.assignments,
        stations=rules.associate.input.stations,
        velocity_model=VELOCITY_MODEL_FILES,
    output:
        events="results/located/{picker}/{associator}/{day}.parquet",
        assignments="results/located/{picker}/{associator}/{day}.assignments.parquet",
    params:
        relocation=RELOCATION_OPTIONS,
        velocity_layers=VELOCITY_LAYERS,
    log:
        "logs/locate/{picker}/{associator}/{day}.log",
    benchmark:
        "logs/benchmarks/locate/{picker}/{associator}/{day}.tsv"
    conda:
        SOFTWARE
    script:
        "../../scripts/locate.py"


rule catalog:
    input:
        events=day_files("results/magnitudes/{picker}/{associator}/{day}.parquet"),
        assignments=day_files(LOCATED_ASSIGNMENTS),
        amplitudes=day_files("results/amplitudes/{picker}/{associator}/{day}.parquet"),
        stations=rules.associate.input.stations,
    output:
        events="results/catalog/{picker}/{associator}.parquet",
        assignments="results/catalog/{picker}/{associator}.assignments.parquet",
        amplitudes="results/catalog/{picker}/{associator}.amplitudes.parquet",
        csv="results/catalog/{picker}/{associator}.csv",
        quakeml="results/catalog/{picker}/{associator}.xml",
        nlloc=directory("results/catalog/{picker}/{associator}.nlloc"),
    log:
        "logs/catalog/{picker}/{associator}.log",
    conda:
        SOFTWARE
    script:
        "../../scripts/catalog.py"
