from quakesnake.download import download_day
from quakesnake.runner import logged
from quakesnake.sources import fdsn

with logged(snakemake):
    params, out = snakemake.params, snakemake.output
    source = params.source
    # the token's path comes from the config, never from params (see download.smk)
    token = fdsn.eida_token(snakemake.config["source"]["eida_token"]) if source["type"] == "fdsn" else None
    download_day(
        source, params.stations, snakemake.wildcards.day, params.margin_s,
        out_status=out.status, out_waveforms=out.waveforms, out_inventory=out.inventory,
        staging_dir=params.staging_dir, synthetic_cfg=params.synthetic, token=token, workers=snakemake.threads,
        arrivals_dir=snakemake.input.arrivals[0].rsplit("/", 1)[0] if snakemake.input.arrivals else None,
    )
