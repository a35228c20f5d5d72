"""analyst: an onset's SNR as an analyst (and the synthetic truth) sees it, measured alike on
training traces and on picks; the pickers' SNR gate."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quakesnake import real_noise
from quakesnake.analyst import pick_snr
from quakesnake.picking import pick_stream
from quakesnake.picking.picks import Pick, picks_table
from quakesnake.picking.stream import above_min_snr

from test_picking import RATE, START, event_stream

P_S, S_S = 60.0, 66.0  # the event's P and S, s after START


def picks_at(*rows, station="SYN"):
    """A picks table of (phase, seconds after START) rows on XX.<station>."""
    return picks_table([Pick("XX", station, "", phase, (START + seconds).ns, 0.9) for phase, seconds in rows], "test")


def test_a_picks_snr_is_the_training_traces_snr_of_the_same_onset():
    """One convention: the pick path (a stretch around each pick, filtered on its own) gives what
    real_noise.arrival_snr gives on the whole trace (P on Z, S on the better horizontal)."""
    stream = event_stream([(P_S, S_S)])
    data = np.stack([stream.select(component=c)[0].data.astype(np.float64) for c in "ZNE"])
    expected_p = real_noise.arrival_snr(data, {"P": [int(P_S * RATE)]}, RATE)
    expected_s = real_noise.arrival_snr(data, {"S": [int(S_S * RATE)]}, RATE)
    snr = pick_snr(stream, picks_at(("P", P_S), ("S", S_S)))
    assert snr == pytest.approx([expected_p, expected_s], rel=0.01)
    assert expected_p > 15 and expected_s > 15  # the test event is strong on its components


def test_snr_is_low_in_noise_and_unmeasurable_at_the_edge_of_the_data():
    stream = event_stream([(P_S, S_S)])
    snr = pick_snr(stream, picks_at(("P", 30.0), ("S", 30.0), ("P", 3.0), ("P", 179.0)))
    assert 1.5 < snr[0] < 6 and 1.5 < snr[1] < 6  # Gaussian noise: its peak over 2 s is ~3-4 RMS
    assert np.isnan(snr[2]) and np.isnan(snr[3])  # no 5.5 s of noise before / 2 s of signal after
    assert np.isnan(pick_snr(stream, picks_at(("P", P_S), station="OTHER"))[0])  # no data of that station
    assert len(pick_snr(stream, picks_at())) == 0


def test_on_a_vertical_only_station_s_is_measured_on_the_vertical():
    vertical = event_stream([(P_S, S_S)], components="Z")
    snr = pick_snr(vertical, picks_at(("S", S_S)))
    assert np.isfinite(snr[0]) and snr[0] > 4


@pytest.mark.parametrize("fill", [0.0, 3.0])
def test_dead_runs_are_not_counted_as_quiet_noise(fill):
    """A gap filled with zeros, or a flat-lined stretch, in the noise window would make any onset
    after it look strong."""
    stream = event_stream([(P_S, S_S)])
    before = pick_snr(stream, picks_at(("P", 30.0)))[0]
    gapped = stream.copy()
    for trace in gapped:
        trace.data[int(25.0 * RATE):int(28.0 * RATE)] = fill  # 3 of the 5 s noise window
    after = pick_snr(gapped, picks_at(("P", 30.0)))[0]
    assert after == pytest.approx(before, rel=0.25)  # not the 1.6 x (or more) of an RMS over the run too
    for trace in gapped:
        trace.data[int(24.0 * RATE):int(29.2 * RATE)] = fill  # under 1 s of data left in the window
    assert np.isnan(pick_snr(gapped, picks_at(("P", 30.0)))[0])


def test_every_pick_carries_its_snr_and_the_gate_drops_the_weak_ones():
    stream = event_stream([(P_S, S_S)])
    picks = pick_stream(stream, {"type": "stalta"})
    assert picks["snr"].notna().all() and (picks["snr"] > 4).all()
    p_snr = float(picks.loc[picks["phase"] == "P", "snr"].iloc[0])
    s_snr = float(picks.loc[picks["phase"] == "S", "snr"].iloc[0])
    only_s = pick_stream(stream, {"type": "stalta", "p_min_snr": p_snr + 1.0})
    assert only_s["phase"].tolist() == ["S"]
    only_p = pick_stream(stream, {"type": "stalta", "s_min_snr": s_snr + 1.0})
    assert only_p["phase"].tolist() == ["P"]
    consensus = {"type": "consensus", "members": [{"type": "stalta"}, {"type": "stalta", "sta_s": 0.4}],
                 "p_min_snr": p_snr + 1.0}
    agreed = pick_stream(stream, consensus)
    assert agreed["phase"].tolist() == ["S"] and agreed["snr"].iloc[0] == pytest.approx(s_snr)


def test_picks_without_a_measured_snr_pass_the_gate():
    picks = picks_at(("P", 10.0), ("P", 20.0), ("S", 30.0))
    picks["snr"] = [np.nan, 2.0, 3.0]
    kept = above_min_snr(picks, {"p_min_snr": 4.0, "s_min_snr": None})
    assert kept["snr"].isna().tolist() == [True, False] and kept["phase"].tolist() == ["P", "S"]
    assert above_min_snr(picks, {"p_min_snr": None, "s_min_snr": None}) is picks
    assert isinstance(kept, pd.DataFrame)
