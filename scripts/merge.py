from quakesnake import io
from quakesnake.merge import merge_station_picks
from quakesnake.runner import logged

with logged(snakemake) as log:
    picks = merge_station_picks(list(snakemake.input))
    log.info("%d picks from %d stations", len(picks), len(snakemake.input))
    io.write_table(picks, snakemake.output.picks)
