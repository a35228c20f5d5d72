"""Local magnitude ML: Wood–Anderson amplitudes from counts + StationXML, station and event magnitudes."""
from __future__ import annotations

import logging

import numpy as np
import obspy
import pandas as pd
import pytest
import scipy.signal
from obspy import UTCDateTime

from quakesnake import magnitude, tabular
from quakesnake.config import SCHEMA_PATH
from quakesnake.evaluation import score_catalog
from quakesnake.magnitude import (
    WOOD_ANDERSON_PAZ, MagnitudeError, event_magnitudes, magnitude_day, minus_log_a0, read_station_corrections,
    resolve_config, station_amplitudes, wood_anderson_amplitude,
)
from quakesnake.sources import synthetic
from quakesnake.traveltimes import DEFAULT_LAYERS, TravelTimes

SCHEMA = SCHEMA_PATH
T0 = UTCDateTime("2024-05-01T00:00:00")
FREQUENCY_HZ = 5.0
STATION = {"network": "SY", "station": "S001", "location": "", "latitude": 46.0, "longitude": 13.0, "elevation_m": 0.0}


def wood_anderson_gain(frequency_hz: float) -> float:
    """|Wood–Anderson response| to displacement at one frequency (gain 2080 included)."""
    _, response = scipy.signal.freqs_zpk(WOOD_ANDERSON_PAZ["zeros"], WOOD_ANDERSON_PAZ["poles"], WOOD_ANDERSON_PAZ["gain"],
                                          worN=[2 * np.pi * frequency_hz])
    return float(abs(response[0])) * WOOD_ANDERSON_PAZ["sensitivity"]


def expected_mm(velocity_m_s: float) -> float:
    return velocity_m_s / (2 * np.pi * FREQUENCY_HZ) * wood_anderson_gain(FREQUENCY_HZ) * 1000.0


def station_stream(bursts: dict[str, list[tuple[float, float]]], seconds: float = 200.0, noise_m_s: float = 1e-10):
    """Counts (HHZ/HHN/HHE, 100 Hz, from T0 - 40 s) of 5 Hz Gaussian-enveloped bursts and the inventory.

    ``bursts`` maps a component to (seconds after T0, peak velocity in m/s). The bursts are
    narrow-band, so counts = |response(5 Hz)| × velocity holds to well under a percent.
    """
    inventory = synthetic.station_inventory(pd.Series(STATION))
    response = inventory[0][0][0].response
    counts_per_m_s = abs(response.get_evalresp_response_for_frequencies([FREQUENCY_HZ], output="VEL")[0])
    t = np.arange(int(seconds * 100)) / 100.0 - 40.0
    rng = np.random.default_rng(0)
    stream = obspy.Stream()
    for component in "ZNE":
        velocity = rng.normal(0.0, noise_m_s, len(t))
        for onset, peak in bursts.get(component, []):
            velocity += peak * np.exp(-0.5 * ((t - onset) / 0.5) ** 2) * np.cos(2 * np.pi * FREQUENCY_HZ * (t - onset))
        stream += obspy.Trace(np.round(velocity * counts_per_m_s).astype(np.int32), header={
            "network": "SY", "station": "S001", "channel": f"HH{component}", "sampling_rate": 100.0, "starttime": T0 - 40.0})
    return stream, inventory


def event_row(event_id: str, origin_s: float, longitude: float = 13.5) -> dict:
    return {"event_id": event_id, "time": tabular.to_datetime64(T0 + origin_s), "latitude": 46.0, "longitude": longitude, "depth_km": 10.0}


def pick(event_id: str, phase: str, seconds: float) -> dict:
    return {"event_id": event_id, "network": "SY", "station": "S001", "location": "", "phase": phase,
            "time": tabular.to_datetime64(T0 + seconds)}


# --------------------------------------------------------------------------- attenuation law, config

def test_hutton_boore_law_and_the_alpha_beta_gamma_form():
    assert minus_log_a0(100.0) == pytest.approx(3.0)
    assert minus_log_a0(17.0) == pytest.approx(1.11 * np.log10(0.17) + 0.00189 * (17 - 100) + 3.0)
    # A law written alpha log10 r + beta r + gamma, entered as a, b, c (config/README.md).
    alpha, beta, gamma = 1.0, 0.002, 0.5
    r = np.array([5.0, 40.0, 250.0])
    assert minus_log_a0(r, a=alpha, b=beta, c=gamma + 2 * alpha + 100 * beta) == pytest.approx(alpha * np.log10(r) + beta * r + gamma)


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="window_s"):
        resolve_config({"window_s": 3})
    with pytest.raises(ValueError, match="attenuation.d"):
        resolve_config({"attenuation": {"d": 1.0}})
    with pytest.raises(ValueError, match="unknown key.*vp_vs"):
        resolve_config({"vp_vs": 1.73})  # S is predicted from the velocity model now
    assert resolve_config({"attenuation": {"a": 1.0}})["attenuation"] == {"a": 1.0, "b": 0.00189, "c": 3.0}


def test_station_corrections_table_errors_name_the_file(tmp_path):
    good = tmp_path / "corrections.csv"
    good.write_text("network,station,correction\nSY,S001,0.12\nSY,S002,-0.3\n")
    assert read_station_corrections(good)["correction"].tolist() == [0.12, -0.3]
    missing = tmp_path / "missing.csv"
    missing.write_text("network,station\nSY,S001\n")
    with pytest.raises(tabular.TableError, match=r"missing.csv.*correction"):
        read_station_corrections(missing)
    twice = tmp_path / "twice.csv"
    twice.write_text("network,station,correction\nSY,S001,0.1\nSY,S001,0.2\n")
    with pytest.raises(tabular.TableError, match=r"twice.csv.*SY.S001"):
        read_station_corrections(twice)
    words = tmp_path / "words.csv"
    words.write_text("network,station,correction\nSY,S001,high\n")
    with pytest.raises(tabular.TableError, match=r"words.csv.*number"):
        read_station_corrections(words)


# --------------------------------------------------------------------------- amplitudes

def test_wood_anderson_amplitude_of_a_known_burst_in_mm():
    velocity = 2e-6
    stream, inventory = station_stream({"E": [(60.0, velocity)], "N": [(60.0, velocity / 3)]})
    measured = wood_anderson_amplitude(stream, inventory, (T0 + 40, T0 + 50), (T0 + 59, T0 + 75))
    assert measured["channel"] == "HHE"
    assert measured["amplitude_mm"] == pytest.approx(expected_mm(velocity), rel=0.03)
    assert abs(measured["time"] - (T0 + 60.0)) < 0.2
    assert measured["snr"] > 100


def test_a_window_without_data_or_response_raises_with_the_reason():
    stream, inventory = station_stream({"E": [(60.0, 1e-6)]})
    with pytest.raises(MagnitudeError, match="no gap-free data"):
        wood_anderson_amplitude(stream, inventory, (T0 + 40, T0 + 50), (T0 + 140, T0 + 170))
    with_gap = stream.copy()
    for trace in with_gap.select(channel="HH[NE]"):
        trace.data = np.ma.masked_array(trace.data, mask=np.zeros(trace.stats.npts, bool))
        trace.data.mask[9500:9600] = True  # 55-56 s after T0
    with pytest.raises(MagnitudeError, match="no gap-free data"):
        wood_anderson_amplitude(with_gap.split(), inventory, (T0 + 40, T0 + 50), (T0 + 59, T0 + 75))
    with pytest.raises(MagnitudeError, match="no usable response"):
        wood_anderson_amplitude(stream, obspy.Inventory(networks=[], source=""), (T0 + 40, T0 + 50), (T0 + 59, T0 + 75))


def test_station_magnitudes_with_predicted_s_and_a_window_cut_before_another_event():
    velocity = 1e-6
    # Event A: S picked at 37.3 s. Event B: only P picked (45 s, inside A's window), so its S is
    # predicted at 45 s plus the default crust's S-P time at its hypocentre (38.7 km away, 10 km
    # deep), where a ten times larger burst arrives.
    tables = TravelTimes(DEFAULT_LAYERS, 50.0, 20.0)
    epicentral = obspy.geodetics.gps2dist_azimuth(46.0, 13.5, 46.0, 13.0)[0] / 1000.0
    predicted_s = 45.0 + float(tables.time("S", epicentral, 10.0) - tables.time("P", epicentral, 10.0))
    assert 50.0 < predicted_s < 51.0  # the S-P time of ~38 km in a crust with vp/vs 1.75
    stream, inventory = station_stream({"E": [(37.3, velocity)], "N": [(predicted_s, 10 * velocity)]})
    events = pd.DataFrame([event_row("A", 20.0), event_row("B", 40.0), event_row("C", 90.0)])
    picks = pd.DataFrame([pick("A", "P", 30.0), pick("A", "S", 37.3), pick("B", "P", 45.0)])
    table = station_amplitudes(stream, inventory, events, picks, STATION, correction=0.2).set_index("event_id")

    assert list(table.index) == ["A", "B"]  # C picked nothing here
    assert table.loc["A", "amplitude_mm"] == pytest.approx(expected_mm(velocity), rel=0.03)
    assert table.loc["B", "amplitude_mm"] == pytest.approx(expected_mm(10 * velocity), rel=0.03)
    assert (table.loc["A", "channel"], table.loc["B", "channel"]) == ("HHE", "HHN")
    distance = np.hypot(obspy.geodetics.gps2dist_azimuth(46.0, 13.5, 46.0, 13.0)[0] / 1000.0, 10.0)
    assert table.loc["A", "hypocentral_distance_km"] == pytest.approx(distance)
    expected_ml = np.log10(table.loc["A", "amplitude_mm"]) + minus_log_a0(distance) + 0.2
    assert table.loc["A", "station_ml"] == pytest.approx(expected_ml)
    assert table["used"].all() and (table["correction"] == 0.2).all()

    # Without B's pick, A's window would reach B's burst and take its amplitude.
    alone = station_amplitudes(stream, inventory, events, picks[picks["event_id"] == "A"], STATION)
    assert alone.loc[0, "amplitude_mm"] == pytest.approx(expected_mm(10 * velocity), rel=0.03)


def test_noise_as_large_as_the_signal_is_not_used():
    stream, inventory = station_stream({"E": [(37.3, 1e-8)]}, noise_m_s=2e-8)
    events = pd.DataFrame([event_row("A", 20.0)])
    table = station_amplitudes(stream, inventory, events, pd.DataFrame([pick("A", "S", 37.3)]), STATION)
    assert table.loc[0, "snr"] < 2 and not table.loc[0, "used"]
    assert np.isnan(event_magnitudes(events, table).loc[0, "magnitude"])


def test_event_magnitude_is_the_median_with_a_mad_uncertainty():
    events = pd.DataFrame({"event_id": ["a", "b", "c"], "time": pd.to_datetime(["2024-01-01"] * 3)})
    amplitudes = pd.DataFrame({
        "event_id": ["a", "a", "a", "a", "b", "c"],
        "station_ml": [1.0, 1.2, 1.3, 3.0, 2.0, 0.5],
        "used": [True, True, True, True, True, False],
    })
    out = event_magnitudes(events, amplitudes).set_index("event_id")
    assert out.loc["a", "magnitude"] == pytest.approx(1.25)  # the 3.0 outlier barely moves it
    assert out.loc["a", "magnitude_uncertainty"] == pytest.approx(1.4826 * 0.15)  # deviations 0.25, 0.05, 0.05, 1.75
    assert out.loc["a", "magnitude_n_stations"] == 4 and out.loc["a", "magnitude_type"] == "ML"
    assert out.loc["b", "magnitude"] == 2.0 and np.isnan(out.loc["b", "magnitude_uncertainty"])
    assert np.isnan(out.loc["c", "magnitude"]) and out.loc["c", "magnitude_n_stations"] == 0
    strict = event_magnitudes(events, amplitudes, min_stations=2).set_index("event_id")
    assert np.isnan(strict.loc["b", "magnitude"]) and strict.loc["a", "magnitude"] == pytest.approx(1.25)


# --------------------------------------------------------------------------- a day of shards

def test_magnitude_day_skips_empty_and_unreadable_shards_with_the_reason(tmp_path, caplog):
    stream, inventory = station_stream({"E": [(37.3, 1e-6)]})
    stream.write(str(tmp_path / "SY.S001.mseed"), format="MSEED")
    inventory.write(str(tmp_path / "SY.S001.xml"), format="STATIONXML")
    (tmp_path / "SY.S002.mseed").write_bytes(b"")
    (tmp_path / "SY.S002.xml").write_bytes(b"")
    (tmp_path / "SY.S003.mseed").write_bytes(b"not miniSEED at all" * 50)
    (tmp_path / "SY.S003.xml").write_bytes(b"<xml/>")
    stations = pd.DataFrame([STATION | {"station": code} for code in ("S001", "S002", "S003", "S004")])
    events = pd.DataFrame([event_row("A", 20.0)])
    picks = pd.DataFrame([pick("A", "S", 37.3) | {"station": code} for code in ("S001", "S002", "S003")])
    shards = [(tmp_path / f"SY.{code}.mseed", tmp_path / f"SY.{code}.xml") for code in ("S001", "S002", "S003", "S004")]
    with caplog.at_level(logging.INFO, logger="quakesnake.magnitude"):
        out, amplitudes = magnitude_day(events, picks, stations, shards)
    assert amplitudes["station"].tolist() == ["S001"]
    assert out.loc[0, "magnitude"] == pytest.approx(amplitudes.loc[0, "station_ml"])
    assert "SY.S002.mseed: empty input file (0 bytes)" in caplog.text
    assert "SY.S003.mseed: corrupt miniSEED" in caplog.text
    assert "S004" not in caplog.text  # no pick there: its (missing) files are never opened


def test_magnitude_files_reads_corrections_and_writes_both_tables(tmp_path):
    stream, inventory = station_stream({"E": [(37.3, 1e-6)]})
    stream.write(str(tmp_path / "SY.S001.mseed"), format="MSEED")
    inventory.write(str(tmp_path / "inventory.xml"), format="STATIONXML")
    (tmp_path / "SY.S002.mseed").write_bytes(b"")  # a station-day without data: listed as such
    tabular.write_table(pd.DataFrame({"network": ["SY", "SY"], "station": ["S001", "S002"], "status": ["ok", "no_data"]}),
                   tmp_path / "status.csv")
    tabular.write_table(pd.DataFrame([STATION]), tmp_path / "stations.csv")
    tabular.write_table(pd.DataFrame([event_row("A", 20.0) | {"magnitude": np.nan}]), tmp_path / "events.parquet")
    tabular.write_table(pd.DataFrame([pick("A", "S", 37.3)]), tmp_path / "assignments.parquet")
    (tmp_path / "corrections.csv").write_text("network,station,correction\nSY,S001,-0.25\n")
    files = dict(events_path=tmp_path / "events.parquet", assignments_path=tmp_path / "assignments.parquet",
                 stations_path=tmp_path / "stations.csv", waveform_status_path=tmp_path / "status.csv",
                 inventory_path=tmp_path / "inventory.xml")
    plain = magnitude.magnitude_files(**files, events_out=tmp_path / "plain.parquet", amplitudes_out=tmp_path / "a0.parquet")
    corrected = magnitude.magnitude_files(**files, events_out=tmp_path / "ml.parquet", amplitudes_out=tmp_path / "a1.parquet",
                                          cfg={"station_corrections": str(tmp_path / "corrections.csv")})
    assert corrected.loc[0, "magnitude"] == pytest.approx(plain.loc[0, "magnitude"] - 0.25)
    written = tabular.read_table(tmp_path / "ml.parquet")
    assert written.loc[0, "magnitude"] == pytest.approx(corrected.loc[0, "magnitude"])
    assert set(magnitude.MAGNITUDE_COLUMNS) <= set(written.columns)
    assert list(tabular.read_table(tmp_path / "a1.parquet").columns) == magnitude.AMPLITUDE_COLUMNS


# --------------------------------------------------------------------------- acceptance on synthetic data

def test_ml_of_a_synthetic_hour_matches_the_truth(tmp_path):
    """Truth locations and picks, synthesized station-days in counts: ML within the issue's bounds."""
    day = "2024-05-01"
    cfg = synthetic.resolve_config({"seed": 1, "n_stations": 6, "events_per_day": 300, "magnitude": {"min": 1.0, "max": 3.5},
                                    "swarm_probability_per_day": 0.0, "gap_probability": 0.0, "truth_min_picks": 4})
    duration = 3600.0
    stations = synthetic.station_table(cfg)
    scenario = synthetic.generate_scenario(cfg, stations, [day], traveltime_cache_dir=tmp_path)
    truth, truth_picks, truth_stations = scenario.truth_tables()
    truth = truth[truth["time"] < pd.Timestamp(day) + pd.Timedelta(seconds=duration - 60)].reset_index(drop=True)
    picks = truth_picks[truth_picks["event_id"].isin(truth["event_id"])].assign(network=cfg["network"])
    shards = []
    for _, station in stations.iterrows():
        stream, inventory = synthetic.synthesize_station_day(cfg, station, day, scenario.arrivals, duration_s=duration)
        path = tmp_path / f"{station['network']}.{station['station']}"
        stream.write(f"{path}.mseed", format="MSEED")
        inventory.write(f"{path}.xml", format="STATIONXML")
        shards.append((f"{path}.mseed", f"{path}.xml"))
    located = truth[["event_id", "time", "latitude", "longitude", "depth_km"]]
    events, amplitudes = magnitude_day(located, picks, stations, shards)

    assert len(events) >= 8 and events["magnitude"].notna().all()
    error = events["magnitude"].to_numpy() - truth["ML"].to_numpy()
    assert abs(error.mean()) <= 0.1 and np.abs(error).mean() <= 0.2
    # The evaluation stage scores the same numbers against the truth catalog.
    score = score_catalog(events, picks, truth, truth_picks, truth_stations, start=day, end=pd.Timestamp(day) + pd.Timedelta(days=1))
    assert score.metrics["events"]["n_magnitude_pairs"] == len(events)
    assert score.metrics["events"]["magnitude_bias"] == pytest.approx(error.mean())
    assert score.metrics["events"]["magnitude_mae"] == pytest.approx(np.abs(error).mean())


def test_evaluation_passes_over_an_empty_magnitude_column():
    from quakesnake.evaluation import event_magnitude

    reference = pd.DataFrame({"magnitude": [np.nan, np.nan], "ML": [1.2, np.nan], "MD": [1.0, 0.8]})
    assert event_magnitude(reference).tolist()[0] == 1.2 and np.isnan(event_magnitude(reference).tolist()[1])
    assert event_magnitude(reference.drop(columns="ML")).tolist() == [1.0, 0.8]
    assert event_magnitude(pd.DataFrame({"magnitude": [np.nan]})).isna().all()
