# quakesnake: continuous waveforms -> ML picks -> associated events -> evaluation and report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# Strict wildcard patterns: no ambiguity between rules, no giant alternations of station names.
wildcard_constraints:
    day=r"\d{4}-\d{2}-\d{2}",
    net=r"[A-Z0-9]{1,2}",
    sta=r"[A-Z0-9]{1,5}",
    picker=r"[a-z0-9][a-z0-9_-]*",
    associator=r"[a-z0-9][a-z0-9_-]*",
    round=r"[1-9][0-9]*",

include: "workflow/rules/download.smk"
include: "workflow/rules/pick.smk"
include: "workflow/rules/associate.smk"
include: "workflow/rules/magnitude.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/adapt.smk"


rule all:
    input:
        final_targets(),
    default_target: True
