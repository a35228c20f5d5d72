from pathlib import Path

from quakesnake.review import review_files
from quakesnake.runner import logged
from quakesnake.traveltimes import configured_layers

with logged(snakemake) as log:
    candidates = review_files(
        detections_path=snakemake.input.detections,
        reference_events_path=snakemake.input.reference_events,
        catalog_events_path=snakemake.input.events,
        assignments_path=snakemake.input.assignments,
        amplitudes_path=snakemake.input.amplitudes,
        stations_path=snakemake.input.stations,
        waveforms_dir=Path(snakemake.input.waveform_status[0]).parent.parent,
        csv_path=snakemake.output.candidates,
        quakeml_path=snakemake.output.quakeml,
        record_sections_dir=snakemake.output.record_sections,
        velocity_model=configured_layers(snakemake.input.velocity_model, snakemake.params.velocity_layers),
        cfg=snakemake.params.review,
        channel_priority=snakemake.params.channel_priority,
    )
    log.info("%d candidate new event(s), %d record section(s)", len(candidates), int((candidates["record_section"] != "").sum()))
