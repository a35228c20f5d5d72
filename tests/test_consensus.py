"""The consensus picker (quakesnake.picking.consensus, picker type consensus)."""
from __future__ import annotations

import numpy as np
import obspy
import pandas as pd
import pytest

from quakesnake import config, picking, tabular
from quakesnake.picking.consensus import agreed_picks

T0 = pd.Timestamp("2024-01-01T00:00:00")


def picks(*rows, picker=""):
    """Picks table of (station, phase, seconds after T0, probability) rows."""
    table = pd.DataFrame({
        "network": pd.Series(["XX"] * len(rows), dtype=object),
        "station": pd.Series([r[0] for r in rows], dtype=object),
        "location": pd.Series([""] * len(rows), dtype=object),
        "phase": pd.Series([r[1] for r in rows], dtype=object),
        "time": T0 + pd.to_timedelta([r[2] for r in rows], unit="s"),
        "probability": pd.Series([r[3] for r in rows], dtype=float),
        "picker": pd.Series([picker] * len(rows), dtype=object),
        "snr": pd.Series([10.0 + r[3] for r in rows], dtype=float),
    })
    return table[tabular.PICK_COLUMNS]


TOLERANCE = {"P": 0.3, "S": 0.5}


def test_a_pick_is_kept_where_enough_members_agree_per_station_and_phase():
    first = picks(("A", "P", 10.00, 0.9), ("A", "S", 20.0, 0.6), ("A", "P", 50.0, 0.8), ("B", "P", 10.0, 0.7))
    second = picks(("A", "P", 10.25, 0.5), ("A", "S", 20.45, 0.4), ("A", "P", 70.0, 0.9), ("B", "S", 10.1, 0.9))
    third = picks(("A", "P", 9.9, 0.3), ("A", "P", 50.5, 0.9))
    out = agreed_picks([first, second, third], 2, TOLERANCE, "vote")
    assert list(out.columns) == tabular.PICK_COLUMNS
    # A P at 10 s (three members), A S at 20 s (two, within 0.5 s); A P at 50 s / 50.5 s are 0.5 s
    # apart (> 0.3 s), 70 s and B's picks have one member each (B P and B S are other phases)
    assert list(zip(out["station"], out["phase"], (out["time"] - T0).dt.total_seconds())) == [
        ("A", "P", 10.0), ("A", "S", 20.0)]
    # the time of the first-listed member, the mean of the members' probabilities
    assert out["probability"].tolist() == pytest.approx([(0.9 + 0.5 + 0.3) / 3, (0.6 + 0.4) / 2])
    assert (out["picker"] == "vote").all()
    assert len(agreed_picks([first, second, third], 3, TOLERANCE)) == 1
    assert len(agreed_picks([first, second, third], 1, TOLERANCE)) == 7  # every distinct group


def test_two_picks_of_one_member_are_not_an_agreement():
    double = picks(("A", "P", 10.0, 0.9), ("A", "P", 10.2, 0.8))
    assert agreed_picks([double, picks()], 2, TOLERANCE).empty
    # the earliest member (by list order) names the time even when it is not the earliest pick
    other = picks(("A", "P", 9.95, 0.4))
    assert (agreed_picks([double, other], 2, TOLERANCE)["time"] == T0 + pd.Timedelta(seconds=10.0)).all()


def test_no_member_picks_gives_a_typed_empty_table():
    out = agreed_picks([picks(), picks()], 2, TOLERANCE, "vote")
    assert out.empty and list(out.columns) == tabular.PICK_COLUMNS
    assert out["time"].dtype.kind == "M"


def test_consensus_settings_are_checked_and_defaults_come_from_the_schema():
    settings = picking.picker_settings({"type": "consensus", "members": [{"type": "stalta"}, {"type": "stalta", "trigger_on": 3}]})
    assert settings["min_agree"] == config.typed_defaults("picker", "consensus")["min_agree"]
    assert settings["tolerance_s"] == {"P": 0.3, "S": 0.5}
    assert settings["members"][1]["trigger_on"] == 3 and "lta_s" in settings["members"][1]
    with pytest.raises(picking.PickerConfigError, match="two or more members"):
        picking.picker_settings({"type": "consensus", "members": [{"type": "stalta"}]})
    with pytest.raises(picking.PickerConfigError, match="min_agree must lie in 1..2"):
        picking.picker_settings({"type": "consensus", "members": [{"type": "stalta"}] * 2, "min_agree": 3})
    with pytest.raises(picking.PickerConfigError, match="unknown key"):
        picking.picker_settings({"type": "consensus", "members": [{"type": "stalta", "thresh": 1}] * 2})
    workflow_config = {"days": {"start": "2024-01-01", "end": "2024-01-01"},
                       "pickers": {"vote": {"type": "consensus", "members": [{"type": "stalta"}, {"type": "stalta"}]}}}
    config.validate_config(workflow_config)
    assert workflow_config["pickers"]["vote"]["tolerance_s"]["S"] == 0.5
    with pytest.raises(config.ConfigError, match="pickers.vote"):
        config.validate_config({"days": {"start": "2024-01-01", "end": "2024-01-01"},
                                "pickers": {"vote": {"type": "consensus", "members": [{"type": "stalta"}]}}})


def test_pick_stream_runs_every_member_on_the_stream():
    rng = np.random.default_rng(3)
    rate, n = 100.0, 120 * 100
    stream = obspy.Stream()
    onset = 60 * 100
    for component in "ZNE":
        data = rng.normal(0, 1.0, n)
        data[onset:onset + 400] += rng.normal(0, 30.0, 400) * np.exp(-np.arange(400) / 150)
        stream += obspy.Trace(data.astype(np.float32), header={"network": "XX", "station": "A", "channel": f"HH{component}",
                                                              "sampling_rate": rate, "starttime": obspy.UTCDateTime(T0.isoformat())})
    stalta = picking.pick_stream(stream, {"type": "stalta"})
    assert len(stalta[stalta["phase"] == "P"]) >= 1
    same = picking.pick_stream(stream, {"type": "consensus", "members": [{"type": "stalta"}, {"type": "stalta"}]},
                               picker_name="vote")
    pd.testing.assert_frame_equal(same.drop(columns="picker"), stalta.drop(columns="picker"))
    # a member that cannot trigger on this event vetoes every pick
    deaf = {"type": "stalta", "trigger_on": 1000.0, "s_trigger_on": 1000.0}
    assert picking.pick_stream(stream, {"type": "consensus", "members": [{"type": "stalta"}, deaf]}).empty
    assert picking.weights_identity({"type": "consensus", "members": [{"type": "stalta"}, deaf]}) == [None, None]


def test_a_consensus_pick_job_asks_for_a_gpu_when_a_member_names_cuda():
    from quakesnake.picking.settings import asks_for_cuda

    cuda = {"type": "seisbench", "device": "cuda:0"}
    assert asks_for_cuda(cuda) and not asks_for_cuda({"type": "seisbench"}) and not asks_for_cuda({"type": "stalta"})
    assert asks_for_cuda({"type": "consensus", "members": [{"type": "stalta"}, cuda]})
    assert not asks_for_cuda({"type": "consensus", "members": [{"type": "stalta"}, {"type": "seisbench", "device": "cpu"}]})


def test_a_consensus_with_a_model_member_is_scheduled_as_a_model_picker():
    from quakesnake.picking.settings import runs_a_model

    model = {"type": "seisbench", "model": "PhaseNet"}
    assert runs_a_model(model) and not runs_a_model({"type": "stalta"})
    assert runs_a_model({"type": "consensus", "members": [{"type": "stalta"}, model]})
    assert not runs_a_model({"type": "consensus", "members": [{"type": "stalta"}, {"type": "stalta", "trigger_on": 5.0}]})
