"""The synthetic data source: scenario tables, waveforms in counts, their physics."""
from __future__ import annotations

import io as bytes_io
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import pytest
import scipy.fft
import scipy.signal

from quakesnake import tabular
from quakesnake.magnitude import WOOD_ANDERSON_PAZ, minus_log_a0
from quakesnake.sources import synthetic
from quakesnake.sources.synthetic import noise as synthetic_noise
from quakesnake.sources.synthetic import (
    generate_events,
    generate_scenario,
    read_arrivals,
    resolve_config,
    station_day_noise,
    station_table,
    synthesize_station_day,
    write_scenario,
)
from quakesnake.traveltimes import read_layers

DAY = "2024-05-01"
QUIET = {"events_per_day": 0, "swarm_probability_per_day": 0.0, "gap_probability": 0.0}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("traveltimes")


@pytest.fixture(scope="module")
def default_scenario(cache_dir):
    cfg = {"seed": 5}
    stations = station_table(cfg)
    return cfg, stations, generate_scenario(cfg, stations, [DAY], traveltime_cache_dir=cache_dir)


def _utc(timestamp) -> obspy.UTCDateTime:
    return obspy.UTCDateTime(pd.Timestamp(timestamp).value / 1e9)


# ------------------------------------------------------------------------------ config, stations

def test_config_defaults_and_unknown_keys():
    cfg = resolve_config({"noise": {"cultural_day_night_ratio": 2.0}})
    assert cfg["noise"]["cultural_day_night_ratio"] == 2.0
    assert cfg["noise"]["level_db_range"] == synthetic.DEFAULTS["noise"]["level_db_range"]
    assert cfg["seed"] == synthetic.DEFAULTS["seed"]
    with pytest.raises(ValueError, match="noise.levels"):
        resolve_config({"noise": {"levels": 1}})
    with pytest.raises(ValueError, match="region"):
        resolve_config({"region": {"lat_min": 47.0, "lat_max": 46.0}})


def test_generated_stations_spread_over_region_and_repeat():
    cfg = resolve_config({"seed": 2})
    stations = station_table(cfg)
    assert list(stations.columns) == tabular.STATION_COLUMNS
    assert list(stations["station"]) == [f"S{i:03d}" for i in range(1, 13)]
    region = cfg["region"]
    assert stations["latitude"].between(region["lat_min"], region["lat_max"]).all()
    assert stations["longitude"].between(region["lon_min"], region["lon_max"]).all()
    # A jittered grid: every station has a neighbour, none sits on top of another.
    lat, lon = np.radians(stations["latitude"].to_numpy()), np.radians(stations["longitude"].to_numpy())
    x, y = 6371 * lon * np.cos(lat.mean()), 6371 * lat
    distance = np.hypot(x[:, None] - x, y[:, None] - y) + np.eye(len(x)) * 1e9
    assert 5 < distance.min() and distance.min(axis=1).max() < 60
    pd.testing.assert_frame_equal(stations, station_table({"seed": 2}))
    assert not station_table({"seed": 3})["latitude"].equals(stations["latitude"])


def test_stations_file_replaces_generated_stations(tmp_path):
    path = tmp_path / "stations.csv"
    path.write_text("station,network,latitude,longitude\nABC,XX,46.0,13.0\nDEF,XX,46.2,13.1\n")
    stations = station_table({"stations_file": str(path)})
    assert list(stations["station"]) == ["ABC", "DEF"]
    assert (stations["elevation_m"] == 0.0).all() and (stations["location"] == "").all()


# ------------------------------------------------------------------------------------ events

def test_magnitudes_follow_gutenberg_richter():
    cfg = {"seed": 11, "events_per_day": 400, "swarm_probability_per_day": 0.0}
    days = [str(day.date()) for day in pd.date_range("2024-01-01", periods=20)]
    events = generate_events(cfg, days)
    assert abs(len(events) - 8000) < 300
    magnitude = resolve_config(cfg)["magnitude"]
    assert events["ML"].between(magnitude["min"], magnitude["max"]).all()
    # Aki's maximum-likelihood b (magnitudes are rounded to 0.01).
    b_value = np.log10(np.e) / (events["ML"].mean() - (magnitude["min"] - 0.005))
    assert b_value == pytest.approx(magnitude["b_value"], abs=0.08)
    depth = resolve_config(cfg)["depth_km"]
    assert events["depth_km"].between(*depth).all()
    assert events["event_id"].is_unique and events["time"].is_monotonic_increasing


def test_swarm_is_clustered_in_time_and_space():
    events = generate_events({"seed": 4, "events_per_day": 0, "swarm_probability_per_day": 1.0}, [DAY])
    assert 5 <= len(events) <= 20 and (events["kind"] == "swarm").all()
    assert (events["time"].max() - events["time"].min()) <= pd.Timedelta(hours=1)
    spread_km = np.hypot(events["latitude"].std() * 111.2, events["longitude"].std() * 111.2 * np.cos(np.radians(46)))
    assert spread_km < 3.0


def test_local_events_lie_close_under_stations_and_leave_the_rest_unchanged():
    from quakesnake.evaluation import epicentral_distance_km
    from quakesnake.sources.synthetic import station_table

    local = {"fraction": 0.4, "max_distance_km": 6.0, "depth_km": [0.5, 3.0]}
    cfg = {"seed": 5, "events_per_day": 300, "swarm_probability_per_day": 0.0, "local_events": local}
    events = generate_events(cfg, [DAY])
    plain = generate_events({**cfg, "local_events": {"fraction": 0.0}}, [DAY])
    moved = events["kind"] == "local"
    assert 0.3 < moved.mean() < 0.5
    stations = station_table(cfg)
    nearest_km = [epicentral_distance_km(e.latitude, e.longitude, stations["latitude"].to_numpy(),
                                         stations["longitude"].to_numpy()).min() for e in events[moved].itertuples()]
    assert max(nearest_km) < 6.0 * 1.01  # flat-earth offsets, great-circle check
    assert events.loc[moved, "depth_km"].between(0.5, 3.0).all()
    # the other events, times and magnitudes are those of the scenario without local events
    keep = ["time", "latitude", "longitude", "depth_km", "ML"]
    pd.testing.assert_frame_equal(events.loc[~moved, keep], plain.loc[~moved, keep])
    assert (events["time"] == plain["time"]).all() and (events["ML"] == plain["ML"]).all()
    with pytest.raises(ValueError, match="local_events"):
        resolve_config({"local_events": {"fraction": 1.5}})


def test_each_day_depends_only_on_seed_and_day():
    one = generate_events({"seed": 8}, ["2024-05-02"])
    two = generate_events({"seed": 8}, ["2024-05-01", "2024-05-02"])
    pd.testing.assert_frame_equal(one, two[two["time"] >= "2024-05-02"].reset_index(drop=True))


# ---------------------------------------------------------------------------------- scenario

def test_scenario_is_deterministic(default_scenario, cache_dir):
    cfg, stations, scenario = default_scenario
    again = generate_scenario(cfg, stations, [DAY], traveltime_cache_dir=cache_dir)
    pd.testing.assert_frame_equal(scenario.events, again.events)
    pd.testing.assert_frame_equal(scenario.arrivals, again.arrivals)
    other = generate_scenario({"seed": 6}, stations, [DAY], traveltime_cache_dir=cache_dir)
    assert not other.events["latitude"].equals(scenario.events["latitude"])


def test_arrivals_cover_every_event_station_and_phase(default_scenario):
    _, stations, scenario = default_scenario
    arrivals = scenario.arrivals
    assert len(arrivals) == 2 * len(scenario.events) * len(stations)
    assert arrivals["time"].dtype == "datetime64[ns]"
    both = arrivals.pivot_table(index=["event_id", "station"], columns="phase", values="travel_time_s")
    assert (both["S"] > both["P"]).all()
    assert arrivals["visible"].any() and not arrivals["visible"].all()
    cfg = resolve_config({})
    visible = arrivals[arrivals["visible"]]
    assert (visible["snr"] >= cfg["truth_min_snr"]).all()
    assert (visible.loc[visible["phase"] == "S", "snr"] >= cfg["truth_min_snr"] * cfg["truth_s_snr_factor"]).all()
    # A bigger event is seen by more stations.
    events = scenario.events
    assert events.loc[events["ML"] > 2.0, "n_visible"].mean() > events.loc[events["ML"] < 1.0, "n_visible"].mean()


def test_polarisation_p_vertical_s_horizontal(default_scenario):
    arrivals = default_scenario[2].arrivals
    horizontal = np.hypot(arrivals["weight_n"], arrivals["weight_e"])
    vertical = arrivals["weight_z"].abs()
    p, s = arrivals["phase"] == "P", arrivals["phase"] == "S"
    assert (vertical[p] > horizontal[p]).all()
    assert (horizontal[s] > vertical[s]).all()


def test_truth_tables_hold_only_visible_picks_of_catalogued_events(default_scenario):
    _, stations, scenario = default_scenario
    events, picks, truth_stations = scenario.truth_tables()
    assert list(events.columns[:6]) == ["event_id", "time", "latitude", "longitude", "depth_km", "ML"]
    assert list(picks.columns) == ["event_id", "station", "phase", "time", "weight"]
    assert (events["n_picks"] >= resolve_config({})["truth_min_picks"]).all()
    assert set(picks["event_id"]) == set(events["event_id"])
    assert (picks.groupby("event_id").size() == events.set_index("event_id")["n_picks"]).all()
    visible = scenario.arrivals[scenario.arrivals["visible"]]
    merged = picks.merge(visible, on=["event_id", "station", "phase", "time"], how="left", indicator=True)
    assert (merged["_merge"] == "both").all()
    assert picks["weight"].between(0, 3).all()
    assert set(truth_stations["station"]) == set(stations["station"])


def test_write_and_read_scenario(default_scenario, tmp_path):
    scenario = default_scenario[2]
    write_scenario(scenario, tmp_path)
    for name in ["events.csv", "picks.csv", "stations.csv", "events_all.csv", "arrivals.parquet"]:
        assert (tmp_path / name).exists()
    first_time = pd.read_csv(tmp_path / "picks.csv")["time"].iloc[0]
    assert first_time.endswith("Z") and "T" in first_time
    # text read back as object (tabular.with_object_text), whatever dtype pandas gave it in memory
    pd.testing.assert_frame_equal(read_arrivals(tmp_path), tabular.with_object_text(scenario.arrivals))
    events, picks, stations = tabular.read_reference(tmp_path)
    assert len(events) == len(scenario.truth_tables()[0]) and len(picks) == len(scenario.truth_tables()[1])


def test_no_events_gives_an_empty_catalog(cache_dir):
    stations = station_table({})
    scenario = generate_scenario(QUIET, stations, [DAY], traveltime_cache_dir=cache_dir)
    events, picks, _ = scenario.truth_tables()
    assert len(scenario.arrivals) == 0 and len(events) == 0 and len(picks) == 0


# --------------------------------------------------------------------------------- waveforms

def test_station_window_in_counts_with_response(default_scenario):
    cfg, stations, scenario = default_scenario
    stream, inventory = synthesize_station_day(cfg, stations.iloc[0], DAY, scenario.arrivals, duration_s=300)
    assert sorted(tr.stats.channel for tr in stream) == ["HHE", "HHN", "HHZ"]
    for trace in stream:
        assert trace.data.dtype == np.int32 and trace.stats.sampling_rate == 100.0
        assert trace.stats.starttime == obspy.UTCDateTime(DAY) - 60 and trace.stats.npts == 42000
        response = inventory.get_response(trace.id, trace.stats.starttime + 100)
        assert response.instrument_sensitivity.value == pytest.approx(6e8)
        assert response.instrument_sensitivity.input_units == "M/S"
    channels = {ch.code: ch for ch in inventory.select(channel="HH?")[0][0]}
    assert channels["HHZ"].dip == -90 and channels["HHE"].azimuth == 90 and channels["HHN"].dip == 0
    assert inventory[0][0].latitude == pytest.approx(stations.iloc[0]["latitude"])

    again, _ = synthesize_station_day(cfg, stations.iloc[0], DAY, scenario.arrivals, duration_s=300)
    for one, two in zip(stream, again):
        np.testing.assert_array_equal(one.data, two.data)
    other, _ = synthesize_station_day(cfg, stations.iloc[1], DAY, scenario.arrivals, duration_s=300)
    assert not np.array_equal(other[0].data, stream[0].data)

    # miniSEED (STEIM2) and StationXML carry the data and response unchanged.
    buffer = bytes_io.BytesIO()
    stream.write(buffer, format="MSEED")
    buffer.seek(0)
    np.testing.assert_array_equal(obspy.read(buffer).select(channel="HHZ")[0].data, stream.select(channel="HHZ")[0].data)
    xml = bytes_io.BytesIO()
    inventory.write(xml, format="STATIONXML")
    xml.seek(0)
    assert obspy.read_inventory(xml).get_response("SY.S001..HHZ", obspy.UTCDateTime(DAY)) is not None


def test_noise_back_in_velocity_matches_the_noise_model():
    cfg = resolve_config({**QUIET, "seed": 9})
    station = station_table(cfg).iloc[3]
    stream, inventory = synthesize_station_day(cfg, station, DAY, pd.DataFrame(columns=["network", "station", "time"]), duration_s=1800)
    stream.remove_response(inventory=inventory, output="VEL", pre_filt=(0.02, 0.04, 40.0, 45.0))
    noise = station_day_noise(cfg, station["network"], station["station"], DAY)
    middle = pd.Timestamp(DAY) + pd.Timedelta(minutes=15)
    for channel, horizontal in [("HHZ", False), ("HHN", True), ("HHE", True)]:
        trace = stream.select(channel=channel)[0].copy()
        assert 1e-9 < trace.data.std() < 1e-5  # m/s: ground velocity, not counts
        trace.filter("bandpass", freqmin=1.0, freqmax=20.0, corners=2)
        measured = trace.data[6000:-6000].std()
        expected = noise.analyst_band_rms([middle], [horizontal])[0]
        assert measured == pytest.approx(expected, rel=0.25)


def test_secondary_microseism_peak_near_0_2_hz():
    cfg = resolve_config({**QUIET, "seed": 12, "noise": {"level_db_range": [0.0, 0.0]}})
    station = station_table(cfg).iloc[0]
    stream, inventory = synthesize_station_day(cfg, station, DAY, pd.DataFrame(columns=["network", "station", "time"]), duration_s=3600)
    stream.remove_response(inventory=inventory, output="VEL", pre_filt=(0.01, 0.02, 40.0, 45.0))
    freq, psd = scipy.signal.welch(stream.select(channel="HHZ")[0].data, fs=100.0, nperseg=2**14)
    acceleration = psd * (2 * np.pi * freq) ** 2
    band = (freq > 0.05) & (freq < 1.0)
    peak = freq[band][np.argmax(acceleration[band])]
    assert 0.13 < peak < 0.3
    one_hz = acceleration[np.argmin(np.abs(freq - 1.0))]
    assert acceleration[band].max() > 10 * one_hz


def test_full_day_with_gap_and_day_night_cycle(cache_dir):
    cfg = resolve_config({"seed": 13, "gap_probability": 1.0})
    stations = station_table(cfg)
    scenario = generate_scenario(cfg, stations, [DAY], traveltime_cache_dir=cache_dir)
    station = stations.iloc[0]
    stream, _ = synthesize_station_day(cfg, station, DAY, scenario.arrivals)
    (gap_start, gap_end), = synthetic.station_day_gaps(cfg, station["network"], station["station"], DAY)
    assert 60 <= gap_end - gap_start <= 1800
    for channel in ["HHZ", "HHN", "HHE"]:
        first, second = stream.select(channel=channel).sort(["starttime"])
        assert first.stats.starttime == obspy.UTCDateTime(DAY) - 60
        assert second.stats.endtime == obspy.UTCDateTime(DAY) + 86400 + 60 - 0.01
        assert abs((second.stats.starttime - first.stats.endtime) - (gap_end - gap_start)) < 0.02
        assert abs(first.stats.npts + second.stats.npts - (8_652_000 - (gap_end - gap_start) * 100)) <= 1
    mine = scenario.arrivals[scenario.arrivals["station"] == station["station"]]
    seconds = (mine["time"] - pd.Timestamp(DAY)).dt.total_seconds()
    inside = (seconds > gap_start) & (seconds < gap_end)
    assert (mine.loc[inside, "in_gap"]).all() and not mine.loc[inside, "visible"].any()

    # Cultural noise is louder in the afternoon than at night (counts ∝ velocity at 1–20 Hz).
    z = stream.select(channel="HHZ").copy().merge(fill_value=0)[0]
    z.filter("bandpass", freqmin=2.0, freqmax=20.0, corners=2)

    def quietest_minute(hour):
        start = int((hour * 3600 + 60) * 100)
        return min(z.data[start + i * 6000:start + (i + 1) * 6000].std() for i in range(20))

    assert quietest_minute(13) > 1.5 * quietest_minute(2)


@pytest.fixture(scope="module")
def strong_events(cache_dir):
    """Half an hour of dense, well-recorded ML 2–3 events at two stations, in velocity."""
    cfg = resolve_config({"seed": 21, "events_per_day": 300, "magnitude": {"min": 2.0, "max": 3.0},
                          "swarm_probability_per_day": 0.0, "gap_probability": 0.0})
    stations = station_table(cfg).iloc[[4, 7]]
    scenario = generate_scenario(cfg, stations, [DAY], traveltime_cache_dir=cache_dir)
    duration = 1800.0
    results = []
    for _, station in stations.iterrows():
        stream, inventory = synthesize_station_day(cfg, station, DAY, scenario.arrivals, duration_s=duration)
        mine = scenario.arrivals[scenario.arrivals["station"] == station["station"]]
        pairs = mine.pivot_table(index="event_id", columns="phase", values="time", aggfunc="first")
        for event_id, times in pairs.iterrows():
            start, end = times["P"] - pd.Timedelta(seconds=90), times["S"] + pd.Timedelta(seconds=40)
            others = mine[(mine["event_id"] != event_id) & (mine["time"] > start) & (mine["time"] < end)]
            if len(others) or start < pd.Timestamp(DAY) or end > pd.Timestamp(DAY) + pd.Timedelta(seconds=duration):
                continue  # keep only events whose waveforms stand alone in the window
            rows = mine[mine["event_id"] == event_id].set_index("phase")
            results.append({"stream": stream, "inventory": inventory, "P": rows.loc["P"], "S": rows.loc["S"]})
    assert len(results) >= 4
    return results


def test_wood_anderson_amplitude_gives_back_ml(strong_events):
    for event in strong_events:
        s_time = _utc(event["S"]["time"])
        window = event["stream"].slice(s_time - 60, s_time + 60).copy()
        window.remove_response(inventory=event["inventory"], output="DISP", pre_filt=(0.05, 0.1, 40.0, 45.0))
        window.simulate(paz_remove=None, paz_simulate=WOOD_ANDERSON_PAZ)
        horizontals = window.select(channel="HH[NE]").slice(s_time - 0.5, s_time + 15)
        peak_mm = max(np.abs(tr.data).max() for tr in horizontals) * 1000.0
        estimate = np.log10(peak_mm) + minus_log_a0(event["S"]["hypocentral_km"])
        assert estimate == pytest.approx(event["S"]["ML"], abs=0.15)


def test_p_strongest_on_vertical_s_on_horizontals(strong_events):
    p_vertical, s_horizontal = [], []
    for event in strong_events:
        stream = event["stream"].copy().filter("bandpass", freqmin=1.0, freqmax=20.0)
        p_time, s_time = _utc(event["P"]["time"]), _utc(event["S"]["time"])
        p_window = stream.slice(p_time, p_time + min(1.5, (s_time - p_time) - 0.1))
        s_window = stream.slice(s_time, s_time + 2.0)

        def peak(window, channels):
            return max(np.abs(tr.data).max() for tr in window.select(channel=channels))

        p_vertical.append(peak(p_window, "HHZ") > peak(p_window, "HH[NE]"))
        s_horizontal.append(peak(s_window, "HH[NE]") > peak(s_window, "HHZ"))
        assert peak(s_window, "HH[NE]") > 1.5 * peak(p_window, "HH[NE]")
    assert np.mean(p_vertical) >= 0.75 and np.mean(s_horizontal) >= 0.9


@pytest.mark.shared
def test_pretrained_picker_picks_synthetic_arrivals(strong_events, seisbench_cache):
    """The real PhaseNetLight (ETHZ) weights must take the synthetic waveforms for earthquakes."""
    import seisbench.models

    model = seisbench.models.PhaseNetLight.from_pretrained("ethz", version_str="2")
    streams = {id(event["stream"]): event["stream"] for event in strong_events}
    picks = [pick for stream in streams.values() for pick in model.classify(stream, P_threshold=0.3, S_threshold=0.3).picks]
    for event in strong_events:
        for phase in ("P", "S"):
            arrival = event[phase]
            found = [
                pick for pick in picks
                if pick.phase == phase and pick.trace_id.split(".")[1] == arrival["station"]
                and abs(pick.peak_time - _utc(arrival["time"])) <= 0.5
            ]
            assert found, f"no {phase} pick for event {arrival['event_id']} at {arrival['station']}"


# ---------------------------------------------------------------------------------------- twin

def _tiny_catalog(directory: Path, magnitude_column: str = "ML") -> None:
    pd.DataFrame(
        {
            "event_id": ["1001", "1002", "1003"],
            "time": ["2024-05-01T03:00:00.000Z", "2024-05-01T15:30:00.000Z", "2024-05-02T01:00:00.000Z"],
            "latitude": [46.30, 46.10, 46.20],
            "longitude": [13.00, 13.20, 13.10],
            "depth_km": [8.0, 12.0, 5.0],
            magnitude_column: [2.1, 1.4, 1.8],
        }
    ).to_csv(directory / "events.csv", index=False)
    pd.DataFrame(
        {
            "event_id": ["1001", "1001", "1002"],
            "station": ["AAA", "AAA", "BBB"],
            "phase": ["P", "S", "P"],
            "time": ["2024-05-01T03:00:05.123Z", "2024-05-01T03:00:09.456Z", "2024-05-01T15:30:04.000Z"],
            "weight": [0, 1, 2],
        }
    ).to_csv(directory / "picks.csv", index=False)
    pd.DataFrame(
        {
            "station": ["AAA", "BBB", "CCC", "DDD"],
            "network": ["XX", "XX", "YY", "YY"],
            "latitude": [46.35, 46.05, 46.50, 45.95],
            "longitude": [13.05, 13.30, 12.80, 12.90],
            "elevation_m": [500.0, 200.0, 1200.0, np.nan],
        }
    ).to_csv(directory / "stations.csv", index=False)


def test_twin_of_a_tiny_catalog(tmp_path, cache_dir):
    _tiny_catalog(tmp_path)
    cfg = {"catalog_dir": str(tmp_path)}
    stations = station_table(cfg)
    assert list(stations["station"]) == ["AAA", "BBB", "CCC", "DDD"]
    scenario = generate_scenario(cfg, stations, [DAY], traveltime_cache_dir=cache_dir)
    assert list(scenario.events["event_id"]) == ["1001", "1002"]
    assert list(scenario.events["ML"]) == [2.1, 1.4]
    arrivals = scenario.arrivals.set_index(["event_id", "station", "phase"])
    assert arrivals.loc[("1001", "AAA", "S"), "time"] == pd.Timestamp("2024-05-01T03:00:09.456")
    assert arrivals.loc[("1001", "AAA", "P"), "time_source"] == "catalog"
    assert arrivals.loc[("1002", "BBB", "P"), "time"] == pd.Timestamp("2024-05-01T15:30:04")
    model_rows = arrivals[arrivals["time_source"] == "model"]
    assert len(model_rows) == len(arrivals) - 3 and model_rows["travel_time_s"].gt(0).all()
    stream, _ = synthesize_station_day(cfg, stations.iloc[0], DAY, scenario.arrivals, duration_s=3 * 3600 + 60)
    assert stream[0].stats.network == "XX" and stream[0].stats.station == "AAA"


def test_twin_magnitudes_fall_back_and_unsized_events_are_left_out(tmp_path, cache_dir, caplog):
    _tiny_catalog(tmp_path, magnitude_column="magnitude")
    cfg = {"catalog_dir": str(tmp_path)}
    scenario = generate_scenario(cfg, station_table(cfg), [DAY], traveltime_cache_dir=cache_dir)
    assert list(scenario.events["ML"]) == [2.1, 1.4]

    events = pd.read_csv(tmp_path / "events.csv").rename(columns={"magnitude": "ML"})
    events["MD"] = [np.nan, 1.1, np.nan]
    events.loc[1, "ML"] = np.nan
    events.loc[0, "ML"] = np.nan
    events.to_csv(tmp_path / "events.csv", index=False)
    with caplog.at_level("WARNING"):
        scenario = generate_scenario(cfg, station_table(cfg), [DAY], traveltime_cache_dir=cache_dir)
    assert list(scenario.events["event_id"]) == ["1002"] and list(scenario.events["ML"]) == [1.1]
    assert "1001" in caplog.text and "left out" in caplog.text

    events.drop(columns=["ML", "MD"]).to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(tabular.TableError, match="magnitude column"):
        generate_scenario(cfg, station_table(cfg), [DAY], traveltime_cache_dir=cache_dir)


@pytest.mark.shared
def test_twin_of_the_ogs_catalog(shared_dir, cache_dir):
    ogs = shared_dir / "data" / "ogs"
    cfg = {"catalog_dir": str(ogs)}
    events, picks, _ = tabular.read_reference(ogs)
    day = events["time"].dt.normalize().value_counts().idxmax()
    day_picks = picks[picks["event_id"].isin(events.loc[events["time"].dt.normalize() == day, "event_id"])]
    all_stations = station_table(cfg)
    busiest = day_picks["station"].value_counts().index
    stations = all_stations[all_stations["station"].isin(busiest)].head(3)
    assert len(stations) == 3
    layers = read_layers(ogs / "velocity_1d.csv")
    scenario = generate_scenario(cfg, stations, [str(day.date())], layers, traveltime_cache_dir=cache_dir)
    expected = events.loc[events["time"].dt.normalize() == day, "event_id"]
    assert set(scenario.events["event_id"]) == set(expected)
    catalog_rows = scenario.arrivals[scenario.arrivals["time_source"] == "catalog"]
    merged = catalog_rows.merge(day_picks, on=["event_id", "station", "phase"], suffixes=("", "_catalog"))
    assert len(merged) == len(catalog_rows) > 0 and (merged["time"] == merged["time_catalog"]).all()
    truth_events, truth_picks, _ = scenario.truth_tables()
    assert set(truth_picks["station"]) <= set(stations["station"])
    stream, inventory = synthesize_station_day(cfg, stations.iloc[0], str(day.date()), scenario.arrivals, duration_s=600)
    assert len(stream) >= 3 and inventory[0].code == stations.iloc[0]["network"]


@pytest.mark.parametrize("n, cycles", [(1000, 1), (1200, 2), (86, 3)])
def test_daylight_modulation_in_the_spectrum_equals_the_product_in_time(n, cycles):
    rng = np.random.default_rng(n)
    series = rng.standard_normal(n).astype(np.float32)
    curve = (2.0, -1.0, 0.7)
    samples = np.arange(n)
    expected = series * (curve[0] + curve[1] * np.cos(2 * np.pi * cycles * samples / n + curve[2]))
    modulated = synthetic_noise.daylight_modulated(np.fft.rfft(series).astype(np.complex64), curve, cycles)
    np.testing.assert_allclose(np.fft.irfft(modulated, n), expected, atol=2e-5)


def test_stretched_day_night_cycle_of_a_day_window_stays_near_the_24_h_model():
    noise = station_day_noise(resolve_config({}), "SY", "S001", DAY)
    margin_s, npts = 60.0, 8_652_000
    n_fft = scipy.fft.next_fast_len(npts, real=True)
    cycles = synthetic_noise.daylight_cycles(n_fft)
    assert cycles == 1
    mean, amplitude, phase = synthetic_noise.daylight_curve(noise, margin_s, n_fft, cycles)
    samples = np.arange(0, npts, 6000)
    stretched = mean + amplitude * np.cos(2 * np.pi * cycles * samples / n_fft + phase)
    model = noise.daylight_factor(samples / 100.0 - margin_s)
    assert np.max(np.abs(stretched / model - 1)) < 0.04  # 2.0 % at the window ends (3:1 day/night, matched at noon)
    assert synthetic_noise.daylight_cycles(scipy.fft.next_fast_len(3600 * 100, real=True)) == 0
