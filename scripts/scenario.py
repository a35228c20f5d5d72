from quakesnake import io, velocity
from quakesnake.runner import logged
from quakesnake.sources import synthetic

with logged(snakemake) as log:
    scenario = synthetic.generate_scenario(
        snakemake.params.synthetic,
        io.read_stations(snakemake.input.stations),
        snakemake.params.days,
        velocity.read_layers(snakemake.params.velocity_model),
    )
    synthetic.write_scenario(scenario, snakemake.output.events.rsplit("/", 1)[0])
    log.info("%d events, %d arrivals", len(scenario.events), len(scenario.arrivals))
