import pandas as pd

from quakesnake.runner import logged
from quakesnake.sources import synthetic

with logged(snakemake):
    stream, inventory = synthetic.synthesize_station_day(
        snakemake.params.synthetic,
        pd.Series(snakemake.params.station),
        snakemake.wildcards.day,
        synthetic.read_arrivals(snakemake.input.arrivals.rsplit("/", 1)[0]),
        margin_s=snakemake.params.margin_s,
    )
    inventory.write(snakemake.output.inventory, format="STATIONXML")
    stream.write(snakemake.output.waveforms, format="MSEED")
