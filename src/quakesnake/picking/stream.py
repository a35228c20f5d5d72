"""Picking a stream: the entry points every caller uses, whatever the picker type."""
from __future__ import annotations

import obspy
import pandas as pd

from quakesnake.analyst import pick_snr
from quakesnake.picking.consensus import agreed_picks
from quakesnake.picking.models import load_model
from quakesnake.picking.picks import Pick, outside_dead_stretches, picks_table
from quakesnake.picking.settings import PickerConfigError, picker_settings
from quakesnake.picking.stalta import pick_stalta
from quakesnake.picking.windows import (batch_size_of, classify_overlap, classify_picks, triggered_picks, trimmed, uses_classify,
                                        window_results)


def pick_stream(
    stream: obspy.Stream,
    picker_cfg: dict,
    *,
    day: str | None = None,
    model=None,
    picker_name: str = "",
) -> pd.DataFrame:
    """Pick P and S on a stream; a table with :data:`quakesnake.tabular.PICK_COLUMNS`, sorted by time.

    The stream is expected as :func:`quakesnake.preprocess.preprocess_stream` leaves it: one
    instrument per station, zero-filled gaps.

    ``model`` reuses an already loaded SeisBench model (see :func:`load_model`); ``day``
    ('YYYY-MM-DD') keeps only picks inside [day, day + 1 d).

    Every pick's ``snr`` is measured on the stream as an analyst would (:mod:`quakesnake.analyst`;
    a consensus pick has its member pick's); ``p_min_snr`` / ``s_min_snr`` drop the picks below
    them (a pick whose SNR cannot be measured, at the edge of the data, is kept).
    """
    settings = picker_settings(picker_cfg)
    if settings["type"] == "consensus":
        models = model if model is not None else picker_model(settings)
        member_picks = [pick_stream(stream, member, model=member_model)
                        for member, member_model in zip(settings["members"], models)]
        picks = agreed_picks(member_picks, settings["min_agree"], settings["tolerance_s"], picker_name)
    else:
        if settings["type"] == "stalta":
            rows = pick_stalta(stream, settings)
        else:
            rows = _pick_seisbench(stream, model if model is not None else load_model(picker_cfg), settings)
        picks = picks_table(rows, picker_name)
        picks["snr"] = pick_snr(stream, picks)
    picks = above_min_snr(picks, settings)
    if day is not None:
        day_start = pd.Timestamp(day)
        inside = (picks["time"] >= day_start) & (picks["time"] < day_start + pd.Timedelta(days=1))
        picks = picks[inside]
    picks = picks.sort_values(["time", "network", "station", "location", "phase"], kind="stable")
    return picks.reset_index(drop=True)


def above_min_snr(picks: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """The picks at or above the picker's ``p_min_snr`` / ``s_min_snr`` (null: no gate); a pick
    without a measured SNR is kept."""
    minimum = picks["phase"].map({"P": settings["p_min_snr"], "S": settings["s_min_snr"]}).astype(float)
    below = (picks["snr"] < minimum).to_numpy()  # NaN on either side: kept
    return picks[~below].reset_index(drop=True) if below.any() else picks


def picker_model(picker_cfg: dict):
    """What :func:`pick_stream` takes as ``model`` to pick many streams with one load: the
    SeisBench model, a consensus picker's list of its members' models (None for STA/LTA members),
    or None for STA/LTA."""
    settings = picker_settings(picker_cfg)
    if settings["type"] == "consensus":
        return [picker_model(member) for member in settings["members"]]
    return load_model(settings) if settings["type"] == "seisbench" else None


def annotate_stream(stream: obspy.Stream, picker_cfg: dict, *, model=None) -> obspy.Stream:
    """The probability traces a SeisBench picker triggers its picks on, one per output channel
    and instrument, named as SeisBench's ``annotate`` names them (channel ``<Model>_<label>``).

    With screening (``screen``), values below half the pick threshold minus ``screen_margin`` may
    be the low-precision ones; everything a pick depends on is computed in full precision.
    """
    settings = picker_settings(picker_cfg)
    if settings["type"] != "seisbench":
        raise PickerConfigError(f"only SeisBench pickers have probability traces, not {settings['type']!r}")
    model = model if model is not None else load_model(picker_cfg)
    arguments = {"batch_size": batch_size_of(model, settings), **classify_overlap(settings)}
    if uses_classify(model, settings):
        return model.annotate(stream, **arguments)
    annotations, leftovers = obspy.Stream(), obspy.Stream()
    rate = float(model.sampling_rate)
    for trace_id, start, stacked in window_results(stream, model, settings, arguments["batch_size"], leftovers):
        network, station, location = trace_id.split(".")
        for channel, label in enumerate(model.labels):
            trimmed_start, values = trimmed(stacked[:, channel], start, rate)
            header = {"network": network, "station": station, "location": location, "starttime": trimmed_start,
                      "sampling_rate": rate, "channel": f"{type(model).__name__}_{label}"}
            annotations += obspy.Trace(values.copy(), header=header)
    if leftovers:
        annotations += model.annotate(leftovers, **arguments)
    return annotations


def _pick_seisbench(stream: obspy.Stream, model, settings: dict) -> list[Pick]:
    """Picks of a SeisBench model.

    ``engine: quakesnake`` runs the window pipeline (:mod:`quakesnake.picking.windows`) on every
    instrument it supports and SeisBench's ``classify`` on the rest; ``engine: seisbench`` runs
    ``classify`` on everything. Both fill missing components (one- or two-component stations)
    with zeros (SeisBench's ``strict=False``), as its data generators pad them in training
    (``missing_components="pad"``), and map Z12 instruments onto ZNE
    (``flexible_horizontal_components``). Either way, picks inside dead stretches of data are
    dropped (:func:`outside_dead_stretches`).
    """
    batch_size = batch_size_of(model, settings)
    if uses_classify(model, settings):
        rows = classify_picks(stream, model, settings, batch_size)
    else:
        rows, leftovers = [], obspy.Stream()
        for trace_id, start, stacked in window_results(stream, model, settings, batch_size, leftovers):
            rows += triggered_picks(trace_id, start, stacked, model, settings)
        if leftovers:
            rows += classify_picks(leftovers, model, settings, batch_size)
    return outside_dead_stretches(rows, stream)
