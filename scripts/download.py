import pandas as pd

from quakesnake.runner import logged
from quakesnake.sources import fdsn, sds, synthetic

with logged(snakemake):
    params, day, out = snakemake.params, snakemake.wildcards.day, snakemake.output
    if params.source["type"] == "synthetic":
        arrivals = synthetic.read_arrivals(snakemake.input.arrivals[0].rsplit("/", 1)[0])
        stream, inventory = synthetic.synthesize_station_day(
            params.synthetic, pd.Series(params.station), day, arrivals, margin_s=params.margin_s)
        result = fdsn.StationDay(stream, inventory, "ok", "synthetic scenario", {"source": "synthetic"})
    elif params.source["type"] == "sds":
        result = sds.read_station_day(params.source, params.station, day, params.margin_s)
    else:  # the token's path comes from the config, never from params (see download.smk)
        token = fdsn.eida_token(snakemake.config["source"]["eida_token"])
        result = fdsn.fetch_station_day(params.source, params.station, day, params.margin_s, token=token)
    fdsn.write_station_day(result, out.waveforms, out.inventory, out.status)
