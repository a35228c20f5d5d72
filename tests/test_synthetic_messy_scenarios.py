"""The generator's messier scenarios: aftershock sequences, clipping digitizers, short-period and
accelerometer stations, transient noise; and the default scenario left as it was."""
from __future__ import annotations

import io as bytes_io

import numpy as np
import obspy
import pandas as pd
import pytest

from quakesnake.errors import QuakesnakeError
from quakesnake.preprocess import preprocess_stream
from quakesnake.sources import synthetic
from quakesnake.sources.synthetic import aftershocks, instruments, transients
from quakesnake.sources.synthetic.settings import SyntheticConfigError

DAY = "2024-05-01"
QUIET = {"events_per_day": 0, "swarm_probability_per_day": 0.0, "gap_probability": 0.0}
NO_ARRIVALS = pd.DataFrame(columns=["network", "station", "time"])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("traveltimes")


# ------------------------------------------------------------------------------- defaults

def test_default_scenario_is_the_one_before_the_new_options():
    """Seed 5's day as the generator made it before aftershocks, sensors, clipping and transients
    existed (numbers measured then): every new option is off by default."""
    cfg = synthetic.resolve_config({"seed": 5})
    assert cfg["aftershocks"]["mainshock_magnitude"] is None
    assert cfg["sensors"] == {"short_period_fraction": 0.0, "accelerometer_fraction": 0.0}
    assert cfg["clipping"]["station_fraction"] == 0.0
    assert set(cfg["transients"].values()) == {0.0}
    assert set(cfg["complexity"].values()) == {0.0}
    stations = synthetic.station_table(cfg)
    scenario = synthetic.generate_scenario(cfg, stations, [DAY])
    events, arrivals = scenario.events, scenario.arrivals
    assert len(events) == 41 and events["ML"].sum() == pytest.approx(40.46, abs=1e-6)
    assert set(events["kind"]) <= {"background", "swarm"}
    assert len(arrivals) == 984 and int(arrivals["visible"].sum()) == 164
    assert arrivals["snr"].sum() == pytest.approx(7279.231, abs=1e-3)
    assert len(scenario.truth_tables()[0]) == 9
    stream, inventory = synthetic.synthesize_station_day(cfg, stations.iloc[0], DAY, arrivals, duration_s=60)
    assert sorted(tr.stats.channel for tr in stream) == ["HHE", "HHN", "HHZ"]
    assert inventory.get_response("SY.S001..HHZ", obspy.UTCDateTime(DAY)).instrument_sensitivity.input_units == "M/S"


    assert not arrivals[["precursor_lead_s", "precursor_z", "precursor_n", "precursor_e"]].to_numpy().any()


# ------------------------------------------------------------------------------- complexity

COMPLEX = {"seed": 5, "complexity": {"polarization_scatter": 0.8, "sp_precursor_probability": 0.5}}


def test_polarisation_scatter_moves_unit_polarisations_per_event_and_station():
    plain_cfg, complex_cfg = synthetic.resolve_config({"seed": 5}), synthetic.resolve_config(COMPLEX)
    stations = synthetic.station_table(plain_cfg)
    plain = synthetic.generate_scenario(plain_cfg, stations, [DAY]).arrivals
    moved = synthetic.generate_scenario(complex_cfg, stations, [DAY]).arrivals
    weights = ["weight_z", "weight_n", "weight_e"]
    assert (plain[["event_id", "station", "phase", "time"]] == moved[["event_id", "station", "phase", "time"]]).all().all()
    np.testing.assert_allclose(np.linalg.norm(moved[weights].to_numpy(), axis=1),
                               np.linalg.norm(plain[weights].to_numpy(), axis=1), rtol=1e-9)
    change = np.linalg.norm(moved[weights].to_numpy() - plain[weights].to_numpy(), axis=1)
    # a unit vector moved by at most 0.8 and scaled back turns by at most asin(0.8)
    assert change.max() <= 2 * np.sin(np.arcsin(0.8) / 2) + 1e-9 and np.median(change) > 0.1
    # P reaches the horizontals more on average; the draws do not depend on the other stations
    p = moved["phase"] == "P"
    assert np.hypot(moved.loc[p, "weight_n"], moved.loc[p, "weight_e"]).mean() > np.hypot(
        plain.loc[p, "weight_n"], plain.loc[p, "weight_e"]).mean()
    alone = synthetic.generate_scenario(complex_cfg, stations.iloc[:1], [DAY]).arrivals
    first = moved[moved["station"] == stations["station"].iloc[0]].reset_index(drop=True)
    np.testing.assert_allclose(alone[weights].to_numpy(), first[weights].to_numpy())


def test_sp_precursors_put_a_p_polarised_pulse_before_some_s_onsets():
    from quakesnake.sources.synthetic.pulses import PULSE_LEAD, phase_velocity

    cfg = synthetic.resolve_config(COMPLEX)
    arrivals = synthetic.generate_scenario(cfg, synthetic.station_table(cfg), [DAY]).arrivals
    s_rows, p_rows = arrivals[arrivals["phase"] == "S"], arrivals[arrivals["phase"] == "P"]
    assert not p_rows["precursor_lead_s"].any()
    has = s_rows["precursor_lead_s"] > 0
    assert 0.35 < has.mean() < 0.65
    assert s_rows.loc[has, "precursor_lead_s"].between(0.3, 1.2).all()
    row = s_rows[has].iloc[0]
    with_precursor, onset = phase_velocity(5, row, 1.0, 0.0)
    without, _ = phase_velocity(5, pd.Series({**row.to_dict(), "precursor_lead_s": 0.0}), 1.0, 0.0)
    lead = int(round(row["precursor_lead_s"] * 100))
    extra = with_precursor - without
    # the precursor's peak lies the lead before the S pulse's peak, and before the S onset
    assert np.abs(extra).max(axis=0).argmax() == np.abs(without).max(axis=0).argmax() - lead
    assert np.abs(extra).max(axis=0).argmax() < onset
    extra = extra[:, onset - lead - 50:onset]
    # polarised as the pair's P: mostly where that P's weights are
    p_row = p_rows[(p_rows["event_id"] == row["event_id"]) & (p_rows["station"] == row["station"])].iloc[0]
    p_direction = np.array([p_row["weight_z"], p_row["weight_n"], p_row["weight_e"]])
    energy = np.sqrt((extra ** 2).sum(axis=1))
    assert abs(np.dot(energy / energy.max(), np.abs(p_direction) / np.abs(p_direction).max())) > 0.5 * len(p_direction) / 3


def test_s_coda_arrivals_add_unpicked_pulses_inside_the_s_coda_only():
    from quakesnake.sources.synthetic.pulses import CODA_ARRIVAL_DELAY_S, PULSE_LEAD, phase_velocity

    cfg = synthetic.resolve_config({"seed": 5, "complexity": {"s_coda_arrivals": 2.0}})
    stations = synthetic.station_table(cfg)
    arrivals = synthetic.generate_scenario(cfg, stations, [DAY]).arrivals
    plain = synthetic.generate_scenario(synthetic.resolve_config({"seed": 5}), stations, [DAY]).arrivals
    # the same arrivals (no new picks, same times), P codas untouched, about 2 per S coda
    assert (plain[["event_id", "station", "phase", "time"]] == arrivals[["event_id", "station", "phase", "time"]]).all().all()
    s_rows = arrivals[arrivals["phase"] == "S"]
    assert not arrivals.loc[arrivals["phase"] == "P", "coda_arrivals"].any()
    assert 1.6 < s_rows["coda_arrivals"].mean() < 2.4
    row = s_rows[s_rows["coda_arrivals"] >= 2].iloc[0]
    coda_s = 30.0
    with_arrivals, onset = phase_velocity(5, row, 1.0, coda_s)
    without, _ = phase_velocity(5, pd.Series({**row.to_dict(), "coda_arrivals": 0}), 1.0, coda_s)
    extra = np.abs(with_arrivals - without).max(axis=0)
    first = int(np.flatnonzero(extra > 0)[0])
    # nothing before the earliest delay after the onset; each copy at most half the direct pulse
    assert first >= onset + int(CODA_ARRIVAL_DELAY_S[0] * 100) - PULSE_LEAD
    assert extra.max() <= 0.5 * np.abs(without[:, :onset + 300]).max() + 1e-12
    assert extra[onset + int(CODA_ARRIVAL_DELAY_S[0] * 100):].max() > 0.05 * np.abs(without).max()
    # a coda that ends before a copy's delay does not get it
    short, _ = phase_velocity(5, row, 1.0, 0.5)
    short_plain, _ = phase_velocity(5, pd.Series({**row.to_dict(), "coda_arrivals": 0}), 1.0, 0.5)
    np.testing.assert_array_equal(short, short_plain)


# ------------------------------------------------------------------------------- aftershocks

MAINSHOCK_TIME = pd.Timestamp(f"{DAY}T02:00:00")
SEQUENCE = {**QUIET, "seed": 77, "aftershocks": {
    "mainshock_magnitude": 5.5, "mainshock_time": str(MAINSHOCK_TIME), "n_events_first_day": 3000,
    "omori_c_days": 0.02, "omori_p": 1.1, "radius_km": 6.0}}


@pytest.mark.parametrize("p", [1.0, 1.1, 0.8])
def test_omori_utsu_time_inverts_the_integrated_rate(p):
    t = np.array([0.0, 1e-4, 0.01, 0.3, 1.0, 20.0])
    np.testing.assert_allclose(aftershocks.omori_utsu_time(aftershocks.omori_utsu_count(t, 0.05, p), 0.05, p), t,
                               rtol=1e-9, atol=1e-12)
    # the count is the integral of the rate 1 / (t + c)^p
    grid = np.linspace(0.0, 2.0, 200001)
    rate = 1.0 / (grid + 0.05) ** p
    integral = np.sum((rate[1:] + rate[:-1]) / 2 * np.diff(grid))
    assert float(aftershocks.omori_utsu_count(2.0, 0.05, p)) == pytest.approx(integral, rel=1e-6)


def test_aftershock_times_follow_the_omori_utsu_rate():
    cfg = synthetic.resolve_config(SEQUENCE)
    events = synthetic.generate_events(cfg, [DAY, "2024-05-02"])
    main = events[events["kind"] == "mainshock"]
    assert len(main) == 1 and main["ML"].iloc[0] == 5.5 and main["time"].iloc[0] == MAINSHOCK_TIME
    after = events[events["kind"] == "aftershock"]
    assert (after["time"] > MAINSHOCK_TIME).all()
    days = (after["time"] - MAINSHOCK_TIME).dt.total_seconds().to_numpy() / 86400.0
    k = aftershocks.omori_productivity(cfg["aftershocks"])
    # counts in windows from minutes to a day and a half after the mainshock: Poisson around the rate's integral
    edges = np.array([0.0, 1 / 24, 3 / 24, 6 / 24, 12 / 24, 1.0, 46 / 24])
    observed = np.histogram(days, edges)[0]
    expected = k * np.diff(aftershocks.omori_utsu_count(edges, 0.02, 1.1))
    assert np.all(np.abs(observed - expected) < 4 * np.sqrt(expected)), (observed, expected)
    assert np.sum(days < 1.0) == pytest.approx(3000, abs=4 * np.sqrt(3000))
    # the first hour is far busier than an hour half a day later (the rate's ratio, ~8)
    late = np.sum((days >= 12 / 24) & (days < 13 / 24))
    assert np.sum(days < 1 / 24) > 5 * late
    # around the mainshock, magnitudes up to Båth's law
    distance = np.hypot((after["latitude"] - main["latitude"].iloc[0]) * 111.195,
                        (after["longitude"] - main["longitude"].iloc[0]) * 111.195 * np.cos(np.radians(46.35)))
    assert distance.max() < 6.1 and after["ML"].between(0.5, 4.3).all()
    # event ids stay unique and in time order over the sequence's thousands of events a day
    assert events["event_id"].is_unique and events["time"].is_monotonic_increasing


def test_aftershocks_leave_the_background_as_it_was():
    background = synthetic.generate_events({"seed": 77}, [DAY])
    with_sequence = synthetic.generate_events({"seed": 77, "aftershocks": SEQUENCE["aftershocks"]}, [DAY])
    kept = with_sequence[with_sequence["kind"].isin(["background", "swarm"])].drop(columns=["event_id"])
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), background.drop(columns=["event_id"]))


def test_a_mainshock_needs_its_time():
    with pytest.raises(SyntheticConfigError, match="aftershocks.mainshock_time") as caught:
        synthetic.resolve_config({"aftershocks": {"mainshock_magnitude": 5.0}})
    assert isinstance(caught.value, QuakesnakeError) and isinstance(caught.value, ValueError)
    with pytest.raises(SyntheticConfigError, match="aftershocks.mainshock_time 'yesterday'"):
        synthetic.resolve_config({"aftershocks": {"mainshock_magnitude": 5.0, "mainshock_time": "yesterday"}})
    with pytest.raises(SyntheticConfigError, match="aftershocks.min_magnitude"):
        synthetic.resolve_config({"aftershocks": {"mainshock_magnitude": 1.5, "mainshock_time": DAY}})
    with pytest.raises(SyntheticConfigError, match="sensors"):
        synthetic.resolve_config({"sensors": {"short_period_fraction": 0.7, "accelerometer_fraction": 0.5}})


# ------------------------------------------------------------------------------- overlapping codas

def _twin_catalog(directory, events: list[tuple[str, str, float]]) -> dict:
    """A twin catalog of events (id, origin time, ML) at one hypocentre, six stations 8–45 km away."""
    directory.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"event_id": [e[0] for e in events], "time": [e[1] for e in events],
                  "latitude": 46.3, "longitude": 13.0, "depth_km": 8.0, "ML": [e[2] for e in events]}
                 ).to_csv(directory / "events.csv", index=False)
    pd.DataFrame(columns=["event_id", "station", "phase", "time", "weight"]).to_csv(directory / "picks.csv", index=False)
    offsets = [(0.07, 0.02), (-0.12, 0.10), (0.15, -0.22), (-0.25, -0.15), (0.30, 0.35), (-0.05, -0.45)]
    pd.DataFrame({"station": [f"ST{i}" for i in range(len(offsets))], "network": "XX",
                  "latitude": [46.3 + dlat for dlat, _ in offsets], "longitude": [13.0 + dlon for _, dlon in offsets],
                  "elevation_m": 300.0}).to_csv(directory / "stations.csv", index=False)
    return {**QUIET, "catalog_dir": str(directory)}


def test_an_aftershock_in_a_large_events_coda_is_not_visible_alone_it_is(tmp_path, cache_dir):
    """The same ML 1.8 aftershock 20 s after an ML 4.5 at the same hypocentre: alone an analyst
    sees it at every station, in the big event's coda nowhere; the big event itself is measured
    as before (only earlier events' codas count)."""
    aftershock = ("2", f"{DAY}T03:00:20", 1.8)
    alone_cfg = _twin_catalog(tmp_path / "alone", [aftershock])
    both_cfg = _twin_catalog(tmp_path / "both", [("1", f"{DAY}T03:00:00", 4.5), aftershock])
    alone_cfg["truth_min_picks"] = both_cfg["truth_min_picks"] = 4
    stations = synthetic.station_table(alone_cfg)
    alone = synthetic.generate_scenario(alone_cfg, stations, [DAY], traveltime_cache_dir=cache_dir)
    both = synthetic.generate_scenario(both_cfg, stations, [DAY], traveltime_cache_dir=cache_dir)
    key = ["event_id", "station", "phase"]
    small_alone = alone.arrivals.set_index(key).sort_index()
    small_both = both.arrivals[both.arrivals["event_id"] == "2"].set_index(key).sort_index()
    # the same signal, a louder background
    np.testing.assert_allclose(small_both["peak_velocity_m_s"], small_alone["peak_velocity_m_s"])
    assert (small_alone["other_codas_rms_m_s"] == 0).all()
    assert (small_both["other_codas_rms_m_s"] > small_alone["noise_rms_m_s"]).all()
    assert small_alone.loc[small_alone.index.get_level_values("phase") == "P", "visible"].all()
    assert not small_both["visible"].any()
    assert list(alone.truth_tables()[0]["event_id"]) == ["2"]
    assert list(both.truth_tables()[0]["event_id"]) == ["1"]
    # the big event alone: the same snr, nothing earlier rings at its onsets
    big_cfg = _twin_catalog(tmp_path / "big", [("1", f"{DAY}T03:00:00", 4.5)])
    big = synthetic.generate_scenario(big_cfg, stations, [DAY], traveltime_cache_dir=cache_dir)
    big_both = both.arrivals[both.arrivals["event_id"] == "1"].set_index(key).sort_index()
    np.testing.assert_array_equal(big_both["snr"], big.arrivals.set_index(key).sort_index()["snr"])


def test_other_event_codas_follow_the_drawn_coda_envelope():
    """Two earlier arrivals ringing at one onset add in power, each with the envelope the
    synthesizer draws; a coda that has ended, the arrival's own event and later arrivals add nothing."""
    from quakesnake.sources.synthetic import overlaps, pulses

    start = pd.Timestamp(f"{DAY}T05:00:00")
    arrivals = pd.DataFrame({
        "event_id": ["a", "b", "c", "c", "d"],
        "phase": ["S", "P", "P", "S", "P"],
        "time": [start, start + pd.Timedelta(seconds=5), start + pd.Timedelta(seconds=30),
                 start + pd.Timedelta(seconds=33), start + pd.Timedelta(seconds=40)],
        "travel_time_s": [6.0, 3.0, 4.0, 7.0, 4.0],
        "coda_s": [100.0, 20.0, 50.0, 50.0, 50.0],
        "network": "XX", "station": "AAA", "location": "",
    })
    rms_z, rms_h = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    rms = overlaps.other_event_coda_rms(arrivals, rms_z, rms_h)
    assert rms[0] == 0.0
    assert rms[1] == pytest.approx(rms_z[0] * pulses.coda_envelope(6.0, 5.0))
    # event c's P at 30 s: a's coda (b's ended at 25 s); its S on a horizontal: a's only, not c's own P
    assert rms[2] == pytest.approx(rms_z[0] * pulses.coda_envelope(6.0, 30.0))
    assert rms[3] == pytest.approx(rms_h[0] * pulses.coda_envelope(6.0, 33.0))
    expected_d = np.sqrt(sum((rms_z[i] * pulses.coda_envelope(arrivals["travel_time_s"][i], 40.0 - lag)) ** 2
                             for i, lag in [(0, 0.0), (2, 30.0), (3, 33.0)]))
    assert rms[4] == pytest.approx(expected_d)
    # another station hears none of it
    elsewhere = arrivals.assign(station=["AAA", "BBB", "BBB", "BBB", "BBB"])
    assert overlaps.other_event_coda_rms(elsewhere, rms_z, rms_h)[1] == 0.0


def test_the_default_scenarios_truth_is_the_one_before_codas_counted(cache_dir):
    """config/config.yaml's two days: its sparse events seldom overlap. Other events' codas ring at
    122 of 4008 onsets and hide one P (an uncatalogued ML 1.0; 436 visible arrivals before, 435
    now); the truth catalog is the one measured before: 21 events, 278 picks."""
    import yaml
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    days = [str(day.date()) for day in pd.date_range(config["days"]["start"], config["days"]["end"])]
    cfg = synthetic.resolve_config(config["synthetic"])
    scenario = synthetic.generate_scenario(cfg, synthetic.station_table(cfg), days, traveltime_cache_dir=cache_dir)
    arrivals = scenario.arrivals
    assert len(arrivals) == 4008 and int((arrivals["other_codas_rms_m_s"] > 0).sum()) == 122
    assert int(arrivals["visible"].sum()) == 435
    events, picks, _ = scenario.truth_tables()
    assert len(events) == 21 and len(picks) == 278


# ------------------------------------------------------------------------------- clipping

def test_near_field_records_clip_flat_at_the_full_scale(cache_dir):
    full_scale = 2**15
    base = {**QUIET, "seed": 3, "n_stations": 4}
    station = synthetic.station_table(base).iloc[0]
    near = {**base, "aftershocks": {"mainshock_magnitude": 4.5, "mainshock_time": f"{DAY}T00:01:00",
                                    "latitude": float(station["latitude"]) + 0.03,
                                    "longitude": float(station["longitude"]), "n_events_first_day": 0}}
    clipped_cfg = {**near, "clipping": {"station_fraction": 1.0, "full_scale_counts": full_scale}}
    scenario = synthetic.generate_scenario(near, synthetic.station_table(base).iloc[[0]], [DAY],
                                           traveltime_cache_dir=cache_dir)
    free, _ = synthetic.synthesize_station_day(near, station, DAY, scenario.arrivals, duration_s=300)
    clipped, _ = synthetic.synthesize_station_day(clipped_cfg, station, DAY, scenario.arrivals, duration_s=300)
    for free_trace, clipped_trace in zip(free, clipped):
        data, reference = clipped_trace.data, free_trace.data
        assert reference.max() > 3 * full_scale  # the unclipped record goes far beyond the full scale
        assert data.max() == full_scale - 1 and data.min() == -full_scale
        np.testing.assert_array_equal(data, np.clip(reference, -full_scale, full_scale - 1))
        top = np.flatnonzero(data == full_scale - 1)
        assert np.any(np.diff(top) == 1)  # flat tops: consecutive samples at the full scale
    details = {}
    preprocess_stream(clipped, details=details)
    assert all(channel["clipped_samples"] > 10 for channel in details["channels"].values())


def test_clipping_applies_to_the_configured_share_of_stations():
    cfg = synthetic.resolve_config({"n_stations": 200, "clipping": {"station_fraction": 0.25}})
    stations = synthetic.station_table(cfg)
    scales = [instruments.station_full_scale(cfg, net, sta) for net, sta in zip(stations["network"], stations["station"])]
    clipping = [scale for scale in scales if scale is not None]
    assert set(clipping) == {2**23} and 30 <= len(clipping) <= 70


# ------------------------------------------------------------------------------- sensors

SENSOR_MIX = {**QUIET, "seed": 8, "n_stations": 40, "sensors": {"short_period_fraction": 0.3, "accelerometer_fraction": 0.3}}


def _stations_by_sensor(cfg):
    stations = synthetic.station_table(cfg)
    sensors = [instruments.station_sensor(synthetic.resolve_config(cfg), net, sta)
               for net, sta in zip(stations["network"], stations["station"])]
    return stations, {name: [i for i, s in enumerate(sensors) if s.name == name] for name in instruments.SENSORS}


def test_sensor_shares_and_channel_codes():
    stations, by_sensor = _stations_by_sensor(SENSOR_MIX)
    assert all(5 <= len(indices) <= 20 for name, indices in by_sensor.items() if name != "broadband")
    for name, band in [("broadband", "HH"), ("short_period", "EH"), ("accelerometer", "HN")]:
        stream, inventory = synthetic.synthesize_station_day(SENSOR_MIX, stations.iloc[by_sensor[name][0]], DAY,
                                                             NO_ARRIVALS, duration_s=120)
        assert sorted(tr.stats.channel for tr in stream) == [band + c for c in "ENZ"]
        assert sorted(ch.code for ch in inventory[0][0]) == [band + c for c in "ENZ"]


@pytest.mark.parametrize("name, units", [("short_period", "M/S"), ("accelerometer", "M/S**2")])
def test_other_sensors_read_back_remove_their_response_and_are_picked(name, units):
    stations, by_sensor = _stations_by_sensor(SENSOR_MIX)
    station = stations.iloc[by_sensor[name][0]]
    stream, inventory = synthetic.synthesize_station_day(SENSOR_MIX, station, DAY, NO_ARRIVALS, duration_s=1800)
    xml = bytes_io.BytesIO()
    inventory.write(xml, format="STATIONXML")
    xml.seek(0)
    inventory = obspy.read_inventory(xml)
    channel = instruments.SENSORS[name].channels[0]
    response = inventory.get_response(f"SY.{station['station']}..{channel}", obspy.UTCDateTime(DAY))
    assert response.instrument_sensitivity.input_units == units
    # The pick stage's channel choice (HH, EH, HN, ... in order) takes this station's only sensor.
    details = {}
    preprocess_stream(stream.copy(), details=details)
    assert sorted(trace_id.split(".")[-1] for trace_id in details["output_channels"]) == sorted(
        instruments.SENSORS[name].channels)
    # Back in ground velocity, the 1–20 Hz noise is the noise model's (an accelerometer's self-noise included).
    stream.remove_response(inventory=inventory, output="VEL", pre_filt=(0.3, 0.5, 40.0, 45.0))
    noise = synthetic.station_day_noise(SENSOR_MIX, "SY", station["station"], DAY)
    assert (noise.self_noise_acceleration_db is not None) == (name == "accelerometer")
    middle = pd.Timestamp(DAY) + pd.Timedelta(minutes=15)
    for trace in stream:
        trace.filter("bandpass", freqmin=1.0, freqmax=20.0, corners=2)
        expected = noise.analyst_band_rms([middle], [not trace.stats.channel.endswith("Z")])[0]
        assert trace.data[6000:-6000].std() == pytest.approx(expected, rel=0.25)


def test_an_accelerometer_records_the_same_ground_motion(cache_dir):
    """The same station and event as broadband and as accelerometer: equal velocity after response removal."""
    base = {**QUIET, "seed": 4, "n_stations": 3}
    station = synthetic.station_table(base).iloc[1]
    near = {**base, "aftershocks": {"mainshock_magnitude": 4.0, "mainshock_time": f"{DAY}T00:01:00",
                                    "latitude": float(station["latitude"]) + 0.1,
                                    "longitude": float(station["longitude"]), "n_events_first_day": 0}}
    scenario = synthetic.generate_scenario(near, synthetic.station_table(base).iloc[[1]], [DAY],
                                           traveltime_cache_dir=cache_dir)
    records = {}
    for share in [0.0, 1.0]:
        cfg = {**near, "sensors": {"accelerometer_fraction": share}}
        stream, inventory = synthetic.synthesize_station_day(cfg, station, DAY, scenario.arrivals, duration_s=240)
        stream.remove_response(inventory=inventory, output="VEL", pre_filt=(0.5, 1.0, 30.0, 40.0))
        records[share] = stream
    for broadband, accelerometer in zip(records[0.0], records[1.0]):
        assert accelerometer.stats.channel[:2] == "HN" and broadband.stats.channel[:2] == "HH"
        peak = np.abs(broadband.data[6000:-3000]).max()
        assert np.abs(accelerometer.data[6000:-3000]).max() == pytest.approx(peak, rel=0.1)
        assert np.corrcoef(broadband.data[6000:-3000], accelerometer.data[6000:-3000])[0, 1] > 0.95


# ------------------------------------------------------------------------------- transients

RATES = {"spikes_per_day": 48.0, "steps_per_day": 24.0, "bursts_per_day": 96.0}


def test_transients_come_at_the_configured_rates():
    cfg = synthetic.resolve_config({"transients": RATES})
    tables = [transients.station_day_transients(cfg, "SY", f"S{i:03d}", day)
              for i in range(20) for day in ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04", "2024-05-05"]]
    counts = pd.concat(tables)["kind"].value_counts()
    for kind, key in [("spike", "spikes_per_day"), ("step", "steps_per_day"), ("burst", "bursts_per_day")]:
        expected = 100 * RATES[key]
        assert abs(counts[kind] - expected) < 4 * np.sqrt(expected)
    again = transients.station_day_transients(cfg, "SY", "S000", "2024-05-01")
    pd.testing.assert_frame_equal(again, tables[0])
    assert not tables[0].equals(tables[1])  # each station-day its own


def test_transients_are_in_the_waveforms():
    cfg = synthetic.resolve_config({**QUIET, "seed": 6, "transients": RATES})
    station = synthetic.station_table(cfg).iloc[2]
    plain, _ = synthetic.synthesize_station_day({**QUIET, "seed": 6}, station, DAY, NO_ARRIVALS, duration_s=3600)
    messy, _ = synthetic.synthesize_station_day(cfg, station, DAY, NO_ARRIVALS, duration_s=3600)
    table = transients.station_day_transients(cfg, "SY", station["station"], DAY)
    table = table[table["offset_s"] < 3600 - 70]
    assert set(table["kind"]) == {"spike", "step", "burst"}
    difference = {m.stats.channel[-1]: m.data.astype(np.float64) - p.data for m, p in zip(messy, plain)}
    bursts = table[table["kind"] == "burst"]
    in_burst = np.zeros(len(difference["Z"]), bool)
    for row in bursts.itertuples(index=False):
        first = int(round((row.offset_s + 60) * 100))
        in_burst[first - 200:first + int(round(row.duration_s * 100)) + 200] = True
    # Cultural bursts: ground motion of the configured size on every component.
    noise = synthetic.station_day_noise(cfg, "SY", station["station"], DAY)
    counts_per_m_s = instruments.BROADBAND.sensitivity
    for row in bursts.itertuples(index=False):
        first = int(round((row.offset_s + 60) * 100))
        n = int(round(row.duration_s * 100))
        centre = slice(first + 3 * n // 8, first + 5 * n // 8)
        expected = row.amplitude * noise.cultural_night_rms_m_s * counts_per_m_s
        for diff in difference.values():
            assert diff[centre].std() > 0.5 * expected
    # Spikes and steps: a jump of the configured number of noise scales on their channel alone.
    for row in table[table["kind"] != "burst"].itertuples(index=False):
        sample = int(round((row.offset_s + 60) * 100))
        if in_burst[sample]:
            continue
        component = "ZNE"[row.component]
        diff = difference[component]
        jump = diff[sample] - diff[sample - 1]
        scale = transients.noise_scale(plain.select(channel="HH" + component)[0].data.astype(np.float64))
        assert abs(jump) == pytest.approx(abs(row.amplitude) * scale, rel=0.2)
        for other in set("ZNE") - {component}:
            assert abs(difference[other][sample] - difference[other][sample - 1]) < 0.05 * abs(jump)
        if row.kind == "spike":
            assert abs(diff[sample + 1] - diff[sample - 1]) < 0.05 * abs(jump)
        else:
            assert abs(diff[sample + 1] - diff[sample]) < 0.05 * abs(jump)
