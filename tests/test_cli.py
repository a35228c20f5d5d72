"""The `quakesnake` command line: `evaluate` on the OGS reference and on small made-up catalogs, bad input."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quakesnake.cli import main
from quakesnake.tabular import read_reference, write_table

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OGS = SHARED / "data" / "ogs"
needs_ogs = pytest.mark.skipif(not OGS.is_dir(), reason=f"OGS reference data not found at {OGS} (../shared beside the checkout)")


def evaluate_args(reference, events, picks, out, *extra) -> list[str]:
    return ["evaluate", "--reference", str(reference), "--events", str(events), "--picks", str(picks), "--out", str(out), *map(str, extra)]


@pytest.fixture
def small_reference(tmp_path):
    """Two events, four picks, three stations (one without coordinates) in the shared layout."""
    directory = tmp_path / "reference"
    directory.mkdir()
    (directory / "events.csv").write_text(
        "event_id,time,latitude,longitude,depth_km,ML\n"
        "1,2024-03-28T01:00:00.000000Z,46.0,12.0,10.0,1.5\n"
        "2,2024-03-28T02:00:00.000000Z,46.1,12.1,5.0,2.0\n"
    )
    (directory / "picks.csv").write_text(
        "event_id,station,phase,time,weight\n"
        "1,AAAA,P,2024-03-28T01:00:02.000000Z,0\n"
        "1,AAAA,S,2024-03-28T01:00:04.000000Z,1\n"
        "2,BBBB,P,2024-03-28T02:00:03.000000Z,0\n"
        "2,CCCC,P,2024-03-28T02:00:03.000000Z,0\n"
    )
    (directory / "stations.csv").write_text(
        "station,network,latitude,longitude,elevation_m\nAAAA,XX,46.0,12.1,100\nBBBB,XX,46.1,12.0,\nCCCC,XX,,,\n"
    )
    return directory


def test_evaluate_a_small_catalog_in_the_package_contracts(small_reference, tmp_path, capsys):
    events = pd.DataFrame({
        "event_id": ["q-1"], "time": [pd.Timestamp("2024-03-28T01:00:00.4")], "latitude": [46.01], "longitude": [12.0],
        "depth_km": [11.0], "magnitude": [np.nan], "n_picks": [2], "n_p": [1], "n_s": [1], "associator": ["pyocto"],
    })
    picks = pd.DataFrame({
        "network": "XX", "station": ["AAAA", "AAAA", "BBBB"], "location": "", "phase": ["P", "S", "S"],
        "time": pd.to_datetime(["2024-03-28T01:00:02.1", "2024-03-28T01:00:04.3", "2024-03-28T02:00:09"], format="ISO8601"),
        "probability": 0.9, "picker": "test",
    })
    write_table(events, tmp_path / "events.csv")
    write_table(picks, tmp_path / "picks.csv")
    out = tmp_path / "out" / "metrics.json"

    code = main(evaluate_args(small_reference, tmp_path / "events.csv", tmp_path / "picks.csv", out, "--plots", tmp_path / "plots"))

    assert code == 0
    metrics = json.loads(out.read_text())
    assert metrics["window"] == {"start": "2024-03-28T00:00:00", "end": "2024-03-29T00:00:00"}  # the predicted picks' day
    assert (metrics["events"]["tp"], metrics["events"]["recall"], metrics["events"]["precision"]) == (1, 0.5, 1.0)
    assert metrics["events"]["magnitude_bias"] is None
    assert (metrics["picks"]["P"]["n_ref"], metrics["picks"]["P"]["tp"]) == (2, 1)  # CCCC has no coordinates
    assert (metrics["picks"]["S"]["n_pred"], metrics["picks"]["S"]["tp"]) == (2, 1)
    assert metrics["dropped"]["ref_picks_without_station_coordinates"] == 1
    assert (tmp_path / "plots" / "event_map.png").exists() and (tmp_path / "plots" / "pick_residuals.png").exists()
    table = capsys.readouterr().out
    assert "P picks" in table and "events" in table and "0.500" in table


@pytest.mark.parametrize("break_input, message", [
    (lambda d: (d / "events.csv").unlink(), "events.csv: file not found"),
    (lambda d: (d / "events.csv").write_text("event_id,time\n1,2024-03-28T01:00:00Z\n"), "missing column(s) latitude, longitude, depth_km"),
    (lambda d: (d / "events.csv").write_text("time,latitude,longitude,depth_km\n2024-03-28T01:00:00Z,north,12,5\n"), "'latitude' holds non-numbers"),
    (lambda d: (d / "picks.csv").write_text("station,phase,time\nAAAA,P,yesterday\n"), "column 'time' holds values that are not times"),
])
def test_bad_prediction_files_exit_2_naming_file_and_reason(small_reference, tmp_path, capsys, break_input, message):
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    for name in ("events.csv", "picks.csv"):
        (predictions / name).write_bytes((small_reference / name).read_bytes())
    break_input(predictions)

    code = main(evaluate_args(small_reference, predictions / "events.csv", predictions / "picks.csv", tmp_path / "m.json"))

    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert str(predictions) in err
    assert not (tmp_path / "m.json").exists()


def test_bad_options_and_reference_exit_2(small_reference, tmp_path, capsys):
    events, picks = small_reference / "events.csv", small_reference / "picks.csv"
    assert main(evaluate_args(small_reference, events, picks, tmp_path / "m.json", "--start", "someday")) == 2
    assert "--start 'someday' is not a time" in capsys.readouterr().err
    assert main(evaluate_args(small_reference, events, picks, tmp_path / "m.json", "--start", "2024-03-29", "--end", "2024-03-28")) == 2
    assert "empty window" in capsys.readouterr().err
    assert main(evaluate_args(small_reference, events, picks, tmp_path / "m.json", "--pick-tolerance", "0")) == 2
    assert "--pick-tolerance must be positive" in capsys.readouterr().err
    assert main(evaluate_args(tmp_path / "nowhere", events, picks, tmp_path / "m.json")) == 2
    assert "nowhere: reference directory not found" in capsys.readouterr().err
    (small_reference / "stations.csv").unlink()
    assert main(evaluate_args(small_reference, events, picks, tmp_path / "m.json")) == 2
    assert "stations.csv: file not found" in capsys.readouterr().err


def test_installed_entry_point_reports_errors_without_traceback(tmp_path):
    executable = Path(sys.executable).with_name("quakesnake")
    if not executable.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    result = subprocess.run(
        [str(executable), *evaluate_args(tmp_path, tmp_path / "e.csv", tmp_path / "p.csv", tmp_path / "m.json")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert "quakesnake evaluate: error:" in result.stderr and "Traceback" not in result.stderr
    help_run = subprocess.run([str(executable), "evaluate", "--help"], capture_output=True, text=True, check=False)
    assert help_run.returncode == 0 and "--event-distance-tolerance" in help_run.stdout


@pytest.mark.shared
@needs_ogs
def test_ogs_reference_against_itself_scores_perfectly(tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(evaluate_args(OGS, OGS / "events.csv", OGS / "picks.csv", out)) == 0
    metrics = json.loads(out.read_text())
    for block in (metrics["picks"]["P"], metrics["picks"]["S"], metrics["events"]):
        assert block["recall"] == 1.0 and block["precision"] == 1.0
    assert metrics["events"]["n_ref"] == 427
    assert metrics["picks"]["P"]["n_ref"] + metrics["picks"]["S"]["n_ref"] == 6858  # 7,082 less 224 without coordinates
    assert metrics["events"]["origin_time_mae_s"] == 0.0 and metrics["events"]["magnitude_bias"] == 0.0
    assert "events" in capsys.readouterr().out


@pytest.mark.shared
@needs_ogs
def test_ogs_reference_against_a_perturbed_copy(tmp_path):
    """Drop every 10th event and its picks, delay picks by 0.2 s (every 7th by 1 s), move events 1 s and ~2 km."""
    events, picks, stations = read_reference(OGS)
    kept_events = events[np.arange(len(events)) % 10 != 0]
    kept_picks = picks[picks["event_id"].isin(kept_events["event_id"])].reset_index(drop=True)
    late = np.arange(len(kept_picks)) % 7 == 0
    pred_picks = kept_picks.assign(time=kept_picks["time"] + pd.to_timedelta(np.where(late, 1.0, 0.2), unit="s"))
    pred_events = kept_events.assign(time=kept_events["time"] + pd.Timedelta(seconds=1), latitude=kept_events["latitude"] + 0.02)
    write_table(pred_events, tmp_path / "events.csv")
    write_table(pred_picks, tmp_path / "picks.csv")
    out = tmp_path / "metrics.json"

    assert main(evaluate_args(OGS, tmp_path / "events.csv", tmp_path / "picks.csv", out, "--start", "2024-03-20", "--end", "2024-06-21")) == 0

    metrics = json.loads(out.read_text())
    event_block = metrics["events"]
    assert event_block["recall"] == pytest.approx(len(kept_events) / len(events))
    assert event_block["precision"] == 1.0
    assert event_block["origin_time_mae_s"] == pytest.approx(1.0, abs=1e-6)
    assert event_block["epicentral_mae_km"] == pytest.approx(2.22, abs=0.02)
    located = set(stations.dropna(subset=["latitude", "longitude"])["station"])
    for phase in ("P", "S"):
        on_located = pred_picks["station"].isin(located) & (pred_picks["phase"] == phase)
        n_ref = int((picks["station"].isin(located) & (picks["phase"] == phase)).sum())
        expected_tp = int((on_located & ~late).sum())
        block = metrics["picks"][phase]
        assert block["n_ref"] == n_ref and block["n_pred"] == int(on_located.sum())
        # a 1 s-late pick may still find another event's pick within 0.5 s at the same station
        assert expected_tp <= block["tp"] <= expected_tp + 5
        assert block["residual_median_s"] == pytest.approx(0.2, abs=1e-6)


def test_every_anticipated_error_shares_one_base_the_cli_and_the_rule_runner_handle(tmp_path, capsys):
    """The CLI ends any QuakesnakeError with its message and exit code 2; a rule script with the
    message alone (exit 1) and the traceback in the rule's log; other errors keep their traceback."""
    from types import SimpleNamespace

    from quakesnake.cli import UsageError
    from quakesnake.config import ConfigError
    from quakesnake.download import DownloadError
    from quakesnake.errors import QuakesnakeError
    from quakesnake.tabular import TableError
    from quakesnake.magnitude import MagnitudeError
    from quakesnake.picking import PickerConfigError
    from quakesnake.preprocess import PreprocessError
    from quakesnake.runner import logged
    from quakesnake.sources.fdsn import SourceError
    from quakesnake.training import TrainingError

    for error in (UsageError, ConfigError, DownloadError, TableError, MagnitudeError, PickerConfigError,
                  PreprocessError, SourceError, TrainingError):
        assert issubclass(error, QuakesnakeError), error

    log = tmp_path / "rule.log"
    job = SimpleNamespace(log=[str(log)], rule="pick", wildcards={"picker": "phasenet", "day": "2024-01-01"})
    with pytest.raises(SystemExit) as exit_info:
        with logged(job):
            raise TableError("results/picks/x.parquet: missing columns ['time']")
    assert exit_info.value.code == 1
    assert "rule pick (picker=phasenet, day=2024-01-01) failed: results/picks/x.parquet: missing" in capsys.readouterr().err
    assert "Traceback" in log.read_text()
    with pytest.raises(KeyError):  # a bug, not an anticipated failure: the traceback reaches the user
        with logged(job):
            raise KeyError("time")


def test_a_job_logs_its_own_cost_in_a_line_the_benchmarks_read_back(tmp_path):
    from types import SimpleNamespace

    from quakesnake.runner import JOB_DONE_PATTERN, logged

    log = tmp_path / "rule.log"
    job = SimpleNamespace(log=[str(log)], rule="pick", wildcards={"picker": "phasenet", "day": "2024-01-01"})
    with logged(job):
        sum(i * i for i in range(200_000))  # some CPU time to account for
    match = JOB_DONE_PATTERN.search(log.read_text())
    assert match and match.group(1) == "pick"
    wall_s, cpu_s = float(match.group(2)), float(match.group(3))
    assert wall_s >= 0 and cpu_s > 0  # the CPU includes this interpreter's start and imports
