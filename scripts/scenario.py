from quakesnake import tabular
from quakesnake.runner import logged
from quakesnake.sources import synthetic
from quakesnake.traveltimes import configured_layers

with logged(snakemake) as log:
    scenario = synthetic.generate_scenario(
        snakemake.params.synthetic,
        tabular.read_stations(snakemake.input.stations),
        snakemake.params.days,
        configured_layers(snakemake.input.velocity_model, snakemake.params.velocity_layers),
    )
    synthetic.write_scenario(scenario, snakemake.output.events.rsplit("/", 1)[0])
    log.info("%d events, %d arrivals", len(scenario.events), len(scenario.arrivals))
