"""Candidate new events: the table, the QuakeML, the record sections of the largest."""
import numpy as np
import obspy
import pandas as pd
import pytest

from quakesnake import tabular
from quakesnake.magnitude import AMPLITUDE_COLUMNS
from quakesnake.review import ReviewError, candidate_events, review_files

T0 = pd.Timestamp("2024-01-01T10:00:00")
STATIONS = pd.DataFrame({
    "network": "SY", "station": ["S001", "S002", "S003"], "location": "",
    "latitude": [46.0, 46.2, 46.4], "longitude": [12.0, 12.2, 12.4], "elevation_m": 0.0,
})


def at(seconds):
    return T0 + pd.Timedelta(seconds=seconds)


@pytest.fixture
def tables():
    detections = pd.DataFrame({
        "event_id": ["E1", "E2", "E3", "E4"],
        "time": [at(0), at(100), at(200), at(300)],
        "latitude": [46.0, 46.1, 46.2, 46.3], "longitude": [12.0, 12.1, 12.2, 12.3], "depth_km": [5.0, 8.0, 3.0, 10.0],
        "magnitude": [2.0, 1.1, np.nan, 1.6], "magnitude_type": "ML",
        "n_picks": [6, 4, 5, 4], "n_p": [3, 2, 3, 2], "n_s": [3, 2, 2, 2], "associator": "pyocto",
        "outcome": ["matched", "fp_real", "fp_false", "fp_real"], "generated_event_id": [None, "G2", None, "G4"],
    })
    rows = []
    for event_id, offset in (("E1", 0), ("E2", 100), ("E3", 200), ("E4", 300)):
        for k, station in enumerate(STATIONS["station"]):
            rows.append([event_id, "SY", station, "", "P", at(offset + 3 + k), 0.1 * (k + 1), 0.9])
            rows.append([event_id, "SY", station, "", "S", at(offset + 5 + 2 * k), -0.1 * (k + 1), 0.8])
    assignments = pd.DataFrame(rows, columns=tabular.ASSIGNMENT_COLUMNS)
    reference = pd.DataFrame({"event_id": ["R1", "R2"], "time": [at(0.3), at(190)], "latitude": [46.0, 46.2],
                              "longitude": [12.0, 12.25], "depth_km": [5.0, 4.0], "found": [True, False]})
    return detections, assignments, reference


def test_candidates_are_the_unmatched_detections_with_their_nearest_reference_event(tables):
    detections, assignments, reference = tables
    candidates = candidate_events(detections, assignments, reference).set_index("event_id")
    assert list(candidates.index) == ["E2", "E3", "E4"]
    assert candidates["size_rank"].to_dict() == {"E4": 1, "E2": 2, "E3": 3}  # E3 has no ML: last
    assert candidates.at["E2", "nearest_reference_event_id"] == "R2"  # 90 s before R2, 99.7 s after R1
    assert candidates.at["E2", "nearest_reference_time_difference_s"] == pytest.approx(-90.0)
    assert candidates.at["E3", "nearest_reference_event_id"] == "R2"
    assert candidates.at["E3", "nearest_reference_time_difference_s"] == pytest.approx(10.0)
    assert candidates.at["E3", "nearest_reference_distance_km"] == pytest.approx(3.87, abs=0.05)
    assert candidates["n_stations"].tolist() == [3, 3, 3]
    assert candidates.at["E2", "residual_rms_s"] == pytest.approx(np.sqrt(np.mean(np.square([0.1, 0.2, 0.3]))))
    assert candidates.at["E4", "generated_event_id"] == "G4"


def test_unknown_outcomes_are_refused(tables):
    detections, assignments, reference = tables
    with pytest.raises(ReviewError, match="'maybe'"):
        candidate_events(detections.assign(outcome="maybe"), assignments, reference)


def write_station_days(directory, assignments):
    """A day of noise per station but S003 (no data: 0 bytes), with a pulse at each pick."""
    day = directory / "2024-01-01"
    day.mkdir(parents=True)
    start = obspy.UTCDateTime("2024-01-01T09:50:00")
    rng = np.random.default_rng(0)
    for station in ("S001", "S002"):
        data = rng.normal(0, 10, 100 * 1200)
        for time in assignments.loc[assignments["station"] == station, "time"]:
            k = int((obspy.UTCDateTime(time.to_pydatetime()) - start) * 100)
            data[k:k + 50] += 500 * np.sin(np.linspace(0, 6 * np.pi, 50))
        stream = obspy.Stream([obspy.Trace(data.astype(np.int32), header={
            "network": "SY", "station": station, "location": "", "channel": f"HH{c}", "sampling_rate": 100.0,
            "starttime": start}) for c in "ZNE"])
        stream.write(str(day / f"SY.{station}.mseed"), format="MSEED")
    (day / "SY.S003.mseed").write_bytes(b"")


def test_review_files_write_table_quakeml_and_record_sections_of_the_largest(tables, tmp_path):
    detections, assignments, reference = tables
    catalog = detections.drop(columns=["outcome", "generated_event_id"])
    amplitudes = pd.DataFrame([["E4", "SY", "S001", "", "HHE", 0.01, at(305), 20.0, 1.6, 0.0, 10.0, True]],
                              columns=AMPLITUDE_COLUMNS)
    paths = {name: tmp_path / f"{name}.parquet" for name in ("detections", "reference", "catalog", "assignments", "amplitudes")}
    for name, table in (("detections", detections), ("reference", reference), ("catalog", catalog),
                        ("assignments", assignments), ("amplitudes", amplitudes)):
        tabular.write_table(table, paths[name])
    tabular.write_table(STATIONS, tmp_path / "stations.csv")
    write_station_days(tmp_path / "waveforms", assignments)
    out = tmp_path / "review"

    candidates = review_files(paths["detections"], paths["reference"], paths["catalog"], paths["assignments"],
                              paths["amplitudes"], tmp_path / "stations.csv", tmp_path / "waveforms",
                              out / "candidates.csv", out / "candidates.xml", out / "record_sections",
                              cfg={"n_record_sections": 2})

    assert sorted(p.name for p in (out / "record_sections").iterdir()) == ["001_E4.png", "002_E2.png"]
    assert candidates.set_index("event_id")["record_section"].to_dict() == {"E2": "002_E2.png", "E3": "", "E4": "001_E4.png"}
    table = tabular.read_table(out / "candidates.csv")
    assert table["event_id"].tolist() == ["E2", "E3", "E4"] and table["outcome"].tolist() == ["fp_real", "fp_false", "fp_real"]
    events = obspy.read_events(str(out / "candidates.xml"))
    assert [e.event_descriptions[0].text for e in events] == ["E2", "E3", "E4"]
    assert all(e.event_type_certainty == "suspected" and "candidate new event" in e.comments[0].text for e in events)
    assert len(events[0].picks) == 6 and len(events[0].origins[0].arrivals) == 6
    assert events[2].magnitudes[0].mag == pytest.approx(1.6) and len(events[2].amplitudes) == 1

    # evaluation of another run than the catalog's: refused with both files named
    tabular.write_table(catalog.iloc[:2], paths["catalog"])
    with pytest.raises(ReviewError, match="E3 is not in the catalog"):
        review_files(paths["detections"], paths["reference"], paths["catalog"], paths["assignments"],
                     paths["amplitudes"], tmp_path / "stations.csv", tmp_path / "waveforms",
                     out / "candidates.csv", out / "candidates.xml", out / "record_sections")
