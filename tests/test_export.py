"""Catalog export: CSV and QuakeML (validated by reading it back with ObsPy)."""
import numpy as np
import pandas as pd
import pytest
from obspy import UTCDateTime, read_events
from obspy.io.quakeml.core import _validate as validate_quakeml_schema

from quakesnake.export import PICK_UNCERTAINTY_S, to_obspy_catalog, write_catalog_csv, write_nlloc_obs, write_quakeml
from quakesnake.tabular import read_table
from quakesnake.magnitude import AMPLITUDE_COLUMNS


@pytest.fixture
def catalog():
    events = pd.DataFrame({
        "event_id": ["pyocto-20240328-00000", "pyocto-20240328-00001"],
        "time": pd.to_datetime(["2024-03-28T01:00:00.123456", "2024-03-28T02:00:00"], format="ISO8601"),
        "latitude": [46.0, 46.2], "longitude": [12.5, 12.7], "depth_km": [8.5, 12.0],
        "magnitude": [1.7, np.nan], "n_picks": [3, 0], "n_p": [2, 0], "n_s": [1, 0], "associator": "pyocto",
        "x_km": [0.0, 1.0], "y_km": [0.0, 1.0], "rms_residual_s": [0.1, np.nan],
    })
    assignments = pd.DataFrame({
        "event_id": "pyocto-20240328-00000", "network": ["XX", "XX", "YY"], "station": ["AAA", "AAA", "BBB"],
        "location": ["", "", "00"], "phase": ["P", "S", "P"],
        "time": pd.to_datetime(["2024-03-28T01:00:03.5", "2024-03-28T01:00:06.25", "2024-03-28T01:00:05"], format="ISO8601"),
        "residual_s": [0.05, -0.1, 0.2], "probability": [0.9, 0.8, 0.7],
    })
    stations = pd.DataFrame({
        "network": ["XX", "YY"], "station": ["AAA", "BBB"], "location": "", "latitude": [46.1, 46.0],
        "longitude": [12.5, 12.9], "elevation_m": [100.0, 200.0],
    })
    return events, assignments, stations


def test_quakeml_reads_back_with_origins_magnitudes_picks_and_arrivals(catalog, tmp_path):
    events, assignments, stations = catalog
    path = tmp_path / "catalog.xml"
    write_quakeml(events, assignments, stations, path)
    assert validate_quakeml_schema(str(path))
    read = read_events(str(path))

    assert len(read) == 2
    first, second = read
    origin = first.preferred_origin()
    assert origin.time == UTCDateTime("2024-03-28T01:00:00.123456")
    assert (origin.latitude, origin.longitude, origin.depth) == (46.0, 12.5, 8500.0)
    assert first.preferred_magnitude().mag == pytest.approx(1.7)
    assert not second.magnitudes and not second.picks and second.preferred_origin().depth == 12000.0

    assert len(first.picks) == 3 and len(origin.arrivals) == 3
    picks = {p.resource_id: p for p in first.picks}
    for arrival, row in zip(origin.arrivals, assignments.itertuples()):
        pick = picks[arrival.pick_id]
        assert pick.waveform_id.get_seed_string() == f"{row.network}.{row.station}.{row.location}."
        assert pick.time == UTCDateTime(row.time.to_pydatetime())
        assert pick.phase_hint == arrival.phase == row.phase
        assert arrival.time_residual == pytest.approx(row.residual_s)
        assert arrival.distance > 0 and 0 <= arrival.azimuth <= 360
    assert origin.quality.associated_phase_count == 3 and origin.quality.associated_station_count == 2


def test_catalog_without_stations_has_arrivals_without_distances(catalog):
    events, assignments, _ = catalog
    arrival = to_obspy_catalog(events, assignments)[0].origins[0].arrivals[0]
    assert arrival.distance is None and arrival.time_residual == pytest.approx(0.05)


def test_csv_round_trips_times_exactly(catalog, tmp_path):
    events, _, _ = catalog
    path = tmp_path / "catalog.csv"
    write_catalog_csv(events, path)
    assert path.read_text().splitlines()[1].split(",")[1] == "2024-03-28T01:00:00.123456Z"
    back = read_table(path)
    # the table contract's ns (pandas 3 parses the fixture's strings to us)
    pd.testing.assert_series_equal(back["time"], events["time"].astype("datetime64[ns]"))
    assert back["event_id"].tolist() == events["event_id"].tolist()
    assert not list(tmp_path.glob("*.part"))


@pytest.fixture
def with_magnitudes(catalog):
    """The catalog after the magnitude stage: ML columns and two amplitudes of the first event."""
    events, assignments, stations = catalog
    events = events.assign(magnitude=[1.35, np.nan], magnitude_type=["ML", None], magnitude_uncertainty=[0.12, np.nan],
                           magnitude_n_stations=[1, 0])
    amplitudes = pd.DataFrame({
        "event_id": "pyocto-20240328-00000", "network": ["XX", "YY"], "station": ["AAA", "BBB"], "location": ["", "00"],
        "channel": ["HHE", "HHN"], "amplitude_mm": [0.02, 0.001],
        "time": pd.to_datetime(["2024-03-28T01:00:06.75", "2024-03-28T01:00:09.1"], format="ISO8601"),
        "hypocentral_distance_km": [14.0, 33.0], "station_ml": [1.35, 0.9], "correction": [0.0, 0.1],
        "snr": [40.0, 1.5], "used": [True, False],
    })[AMPLITUDE_COLUMNS]
    return events, assignments, stations, amplitudes


def test_quakeml_carries_ml_station_magnitudes_and_amplitudes(with_magnitudes, tmp_path):
    events, assignments, stations, amplitudes = with_magnitudes
    path = tmp_path / "catalog.xml"
    write_quakeml(events, assignments, stations, path, amplitudes)
    assert validate_quakeml_schema(str(path))
    first, second = read_events(str(path))

    magnitude = first.preferred_magnitude()
    assert (magnitude.mag, magnitude.magnitude_type, magnitude.station_count) == (pytest.approx(1.35), "ML", 1)
    assert magnitude.mag_errors.uncertainty == pytest.approx(0.12)
    assert magnitude.origin_id == first.preferred_origin().resource_id
    assert len(first.amplitudes) == len(first.station_magnitudes) == 2
    assert [c.weight for c in magnitude.station_magnitude_contributions] == [1.0, 0.0]
    picks = {p.resource_id: p for p in first.picks}
    amplitudes_by_id = {a.resource_id: a for a in first.amplitudes}
    for station_magnitude, contribution, row in zip(first.station_magnitudes, magnitude.station_magnitude_contributions,
                                                    amplitudes.itertuples()):
        assert contribution.station_magnitude_id == station_magnitude.resource_id
        assert station_magnitude.mag == pytest.approx(row.station_ml) and station_magnitude.station_magnitude_type == "ML"
        amplitude = amplitudes_by_id[station_magnitude.amplitude_id]
        assert amplitude.generic_amplitude == pytest.approx(row.amplitude_mm / 1000.0) and amplitude.unit == "m"
        assert amplitude.waveform_id.get_seed_string() == f"{row.network}.{row.station}.{row.location}.{row.channel}"
        assert amplitude.scaling_time == UTCDateTime(row.time.to_pydatetime())
        assert picks[amplitude.pick_id].waveform_id.station_code == row.station
    # XX.AAA has an S pick: the amplitude hangs on it, not on the P pick.
    assert picks[first.amplitudes[0].pick_id].phase_hint == "S"
    assert not second.magnitudes and not second.amplitudes


def test_nonlinloc_observation_files_parse_line_by_line(with_magnitudes, tmp_path):
    events, assignments, stations, amplitudes = with_magnitudes
    catalog = to_obspy_catalog(events, assignments, stations, amplitudes)
    directory = tmp_path / "pyocto.nlloc"
    written = write_nlloc_obs(catalog, directory)
    # The second event has no picks: nothing to locate, no file.
    assert written == [directory / "pyocto-20240328-00000.obs"] and sorted(directory.iterdir()) == written
    lines = written[0].read_text().splitlines()
    assert lines[0] == "PUBLIC_ID smi:quakesnake/event/pyocto-20240328-00000"
    observations = []
    for line in lines[1:]:
        # station instrument component onset phase first-motion date hourmin seconds GAU error coda amplitude period
        fields = line.split()
        assert len(fields) == 14 and fields[1] == "?" and fields[9] == "GAU"
        time = UTCDateTime.strptime(fields[6] + fields[7], "%Y%m%d%H%M") + float(fields[8])
        observations.append((fields[0], fields[4], time, float(fields[10])))
    expected = [(row.station, row.phase, UTCDateTime(row.time.to_pydatetime()), PICK_UNCERTAINTY_S[row.phase])
                for row in assignments.itertuples()]
    assert sorted(observations) == sorted(expected)
    # A second export replaces the directory as a whole.
    write_nlloc_obs(catalog[:0], directory)
    assert directory.is_dir() and not list(directory.iterdir()) and not list(tmp_path.glob("*.part"))


def test_quakeml_carries_the_relocated_origin_and_its_uncertainties(catalog, tmp_path):
    events, assignments, stations = catalog
    located = events.assign(relocated=[True, False], erh_km=[0.8, np.nan], erz_km=[1.5, np.nan],
                            time_std_s=[0.12, np.nan], rms_residual_s=[0.09, np.nan])
    path = tmp_path / "located.xml"
    write_quakeml(located, assignments, stations, path)
    validate_quakeml_schema(str(path))
    first, second = read_events(str(path))
    origin = first.preferred_origin()
    assert origin.origin_uncertainty.horizontal_uncertainty == pytest.approx(800.0)
    assert origin.origin_uncertainty.preferred_description == "horizontal uncertainty"
    assert origin.depth_errors.uncertainty == pytest.approx(1500.0)
    assert origin.time_errors.uncertainty == pytest.approx(0.12)
    assert origin.quality.standard_error == pytest.approx(0.09)
    assert origin.quality.associated_phase_count == 3  # the arrivals' counts stay beside it
    assert str(origin.method_id).endswith("/method/pyocto+relocation-1d")
    kept = second.preferred_origin()  # not relocated: the associator's origin, without uncertainties
    assert kept.origin_uncertainty is None and kept.depth_errors.uncertainty is None
    assert str(kept.method_id).endswith("/method/pyocto")
