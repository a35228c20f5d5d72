import json

from quakesnake.adapt import write_day_labels
from quakesnake.runner import logged

with logged(snakemake):
    counts = write_day_labels(snakemake.input.picks, snakemake.input.events, snakemake.input.assignments,
                              dict(snakemake.output.items()), snakemake.params.labels)
    with open(snakemake.output.counts, "w") as handle:
        json.dump(counts, handle, indent=1)
