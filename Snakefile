# quakesnake: continuous waveforms -> ML picks -> associated events -> evaluation and report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/pick.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/associate.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        final_targets(),
    default_target: True
