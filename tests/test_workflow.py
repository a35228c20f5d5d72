"""The Snakemake workflow on a tiny synthetic scenario: dry runs, a full run, reruns of what changed."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import obspy
import pytest
import yaml
from workflow_runs import ROOT, SNAKEMAKE, planned_jobs, snakemake

from quakesnake import tabular
from quakesnake.traveltimes import DEFAULT_LAYERS

TINY = {
    "days": {"start": "2024-01-01", "end": "2024-01-02"},
    "synthetic": {"seed": 7, "n_stations": 4, "events_per_day": 15, "swarm_probability_per_day": 0.0,
                  "truth_min_picks": 4},
    "pickers": {"stalta": {"type": "stalta"}, "stalta-strict": {"type": "stalta", "trigger_on": 6.0}},
    "associators": {"pyocto": {"type": "pyocto", "n_picks": 4, "n_p_picks": 2, "n_s_picks": 1, "n_p_and_s_picks": 1}},
    "review": {"n_record_sections": 1},
    "velocity_model": "velocity.csv",  # the model as a file, written by the fixture (the locate stage is on by default)
}
REVIEW_RECORD_SECTIONS = TINY["review"]["n_record_sections"]


def run(workdir: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    """Snakemake on 2 cores with ``config`` as the configuration file."""
    return snakemake(workdir, "--cores", "2", *(["--configfile", str(config)] if config else []), *args)


def rules_and_wildcards(result: subprocess.CompletedProcess) -> list[tuple[str, dict]]:
    return [(job["rule"], job["wildcards"]) for job in planned_jobs(result.stdout + result.stderr)]


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_default_config_dry_run_shows_the_whole_dag(tmp_path):
    jobs = rules_and_wildcards(run(tmp_path, "-n", config=ROOT / "config" / "config.yaml"))
    rules = [rule for rule, _ in jobs]
    days = 2
    # one job per day downloads the 12 station-days; one per picker and day preprocesses and picks them
    assert rules.count("download") == days
    assert rules.count("pick") == 2 * days  # PhaseNet (shipped weights) and STA/LTA
    assert "preprocess" not in rules and "merge" not in rules
    assert rules.count("associate") == rules.count("locate") == rules.count("magnitude") == 2 * 2 * days
    assert rules.count("evaluate") == 2 * 2


def test_snakemake_lint_finds_nothing(tmp_path):
    result = snakemake(tmp_path, "--lint", "--configfile", str(ROOT / "config" / "config.yaml"), check=False)
    assert result.returncode == 0 and "Lints for" not in result.stdout + result.stderr, result.stdout[-3000:]


def test_relocation_puts_a_locate_job_per_day_before_magnitude(tmp_path):
    config = write_config(tmp_path / "relocate.yaml", TINY)
    (tmp_path / "velocity.csv").write_text(DEFAULT_LAYERS.to_csv(index=False))
    jobs = planned_jobs(run(tmp_path, "-n", config=config).stdout)
    located = sorted(job["output"][0] for job in jobs if job["rule"] == "locate")
    assert located == sorted(f"results/located/{picker}/pyocto/{day}.parquet"
                             for picker in TINY["pickers"] for day in ("2024-01-01", "2024-01-02"))
    # magnitude reads the located tables: with relocation off there is nothing between them
    off = write_config(tmp_path / "off.yaml", {**TINY, "relocation": {"enabled": False}})
    rules = [job["rule"] for job in planned_jobs(run(tmp_path, "-n", config=off).stdout)]
    assert "locate" not in rules and rules.count("magnitude") == len(TINY["pickers"]) * 2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    config = write_config(workdir / "tiny.yaml", TINY)
    (workdir / "velocity.csv").write_text(DEFAULT_LAYERS.to_csv(index=False))
    run(workdir, config=config)
    return workdir, config


@pytest.mark.slow
def test_tiny_scenario_runs_end_to_end(tiny_run):
    workdir, _ = tiny_run
    for picker in TINY["pickers"]:
        metrics = json.loads((workdir / f"results/evaluation/{picker}/pyocto/metrics.json").read_text())
        for phase in ("P", "S"):
            assert set(metrics["picks"][phase]) >= {"recall", "precision", "n_ref", "n_pred", "residual_median_s"}
        assert set(metrics["events"]) >= {
            "recall", "precision", "n_ref", "n_pred", "tp", "origin_time_mae_s",
            "epicentral_mae_km", "epicentral_rmse_km", "depth_mae_km", "depth_rmse_km",
        }
        assert metrics["picks"]["P"]["n_ref"] > 0
        assert (workdir / f"results/catalog/{picker}/pyocto.xml").stat().st_size > 0
        assert (workdir / f"results/evaluation/{picker}/pyocto/event_map.png").stat().st_size > 0
        # the synthetic truth is the reference: every unmatched detection is real or false
        events = metrics["events"]
        assert events["fp_real"] + events["fp_false"] == events["fp"]
        assert events["precision_real"] == pytest.approx((events["tp"] + events["fp_real"]) / events["n_pred"])
        for figure in ("frequency_magnitude", "cumulative_events", "magnitudes", "pick_residuals"):
            assert (workdir / f"results/evaluation/{picker}/pyocto/{figure}.png").stat().st_size > 0
        review = workdir / f"results/review/{picker}/pyocto"
        candidates = tabular.read_table(review / "candidates.csv")
        assert len(candidates) == events["fp"]
        catalog = obspy.read_events(str(review / "candidates.xml"))
        assert sorted(e.event_descriptions[0].text for e in catalog) == sorted(candidates["event_id"])
        largest = candidates[candidates["size_rank"] <= REVIEW_RECORD_SECTIONS]
        assert sorted(p.name for p in (review / "record_sections").glob("*.png")) == sorted(largest["record_section"])
    baseline = json.loads((workdir / "results/evaluation/stalta/pyocto/metrics.json").read_text())
    # The baseline picker must find most of what an analyst would pick on this scenario.
    assert baseline["picks"]["P"]["recall"] > 0.6
    assert baseline["events"]["recall"] > 0.6
    assert (workdir / "results/evaluation/summary.csv").exists()


@pytest.mark.slow
def test_nothing_to_do_after_a_complete_run(tiny_run):
    workdir, config = tiny_run
    assert [rule for rule, _ in rules_and_wildcards(run(workdir, "-n", config=config))] == []


@pytest.mark.slow
def test_changing_one_picker_threshold_reruns_only_that_picker(tiny_run):
    workdir, config = tiny_run
    changed = yaml.safe_load(config.read_text())
    changed["pickers"]["stalta-strict"]["trigger_on"] = 5.0
    changed_config = write_config(workdir / "changed.yaml", changed)
    jobs = rules_and_wildcards(run(workdir, "-n", config=changed_config))
    rules = {rule for rule, _ in jobs} - {"all"}
    assert rules == {"pick", "associate", "locate", "magnitude", "catalog", "evaluate", "report_figures", "review", "summary"}
    pickers = {wildcards["picker"] for _, wildcards in jobs if "picker" in wildcards}
    assert pickers == {"stalta-strict"}
    assert sum(rule == "pick" for rule, _ in jobs) == 2  # one per day


@pytest.mark.slow
def test_changing_a_relocation_option_reruns_locate_and_what_follows_only(tiny_run):
    workdir, config = tiny_run
    changed = yaml.safe_load(config.read_text())
    changed["relocation"] = {"pick_sigma_s": {"S": 0.3}}
    jobs = rules_and_wildcards(run(workdir, "-n", config=write_config(workdir / "sigma.yaml", changed)))
    assert {rule for rule, _ in jobs} - {"all"} == {"locate", "magnitude", "catalog", "evaluate", "report_figures", "review", "summary"}
    assert sum(rule == "locate" for rule, _ in jobs) == len(TINY["pickers"]) * 2


@pytest.mark.slow
def test_editing_the_velocity_model_file_reruns_the_rules_that_read_it(tiny_run):
    import os

    workdir, config = tiny_run
    model = workdir / "velocity.csv"
    original, stat = model.read_text(), model.stat()
    model.write_text(DEFAULT_LAYERS.assign(vp_km_s=DEFAULT_LAYERS["vp_km_s"] * 1.02).to_csv(index=False))
    try:
        jobs = rules_and_wildcards(run(workdir, "-n", config=config))
    finally:  # the fixture's model back, with its old time, so that nothing is stale for the other tests
        model.write_text(original)
        os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rules = [rule for rule, _ in jobs]
    # every reader of the model (travel times of the scenario, PyOcto's 1D table, relocation,
    # magnitude windows) and what depends on them; the station table does not read it
    assert {"scenario", "associate", "locate", "magnitude"} <= set(rules)
    assert rules.count("associate") == rules.count("locate") == rules.count("magnitude") == len(TINY["pickers"]) * 2
    assert "station_table" not in rules
    assert [rule for rule, _ in rules_and_wildcards(run(workdir, "-n", config=config))] == []


@pytest.mark.slow
def test_the_catalog_carries_the_relocated_hypocentres(tiny_run):
    from obspy import read_events

    from quakesnake import tabular

    workdir, _ = tiny_run
    events = tabular.read_table(workdir / "results/catalog/stalta/pyocto.parquet")
    assert events["relocated"].any(), "no event of the tiny run was relocated"
    relocated = events[events["relocated"]]
    assert relocated[["erh_km", "erz_km", "time_std_s"]].notna().all().all()
    assert (relocated["latitude"] != relocated["latitude_assoc"]).all()
    origins = {str(e.event_descriptions[0].text): e.preferred_origin() for e in read_events(str(workdir / "results/catalog/stalta/pyocto.xml"))}
    for row in relocated.itertuples():
        assert origins[row.event_id].latitude == pytest.approx(row.latitude)
        assert origins[row.event_id].origin_uncertainty.horizontal_uncertainty == pytest.approx(row.erh_km * 1000.0)


def pick_log_summary(workdir: Path, picker: str, day: str) -> str:
    """The pick job's closing line: how many station-days it picked and took from its cache."""
    lines = (workdir / f"logs/pick/{picker}/{day}.log").read_text().splitlines()
    return next(line for line in reversed(lines) if "station-days," in line)


@pytest.mark.slow
def test_replacing_one_station_day_reruns_only_its_shard_and_days(tiny_run):
    workdir, config = tiny_run
    raw = workdir / "results/waveforms/2024-01-02/SY.S002.mseed"
    picks_dir = workdir / "results/picks"
    before = {p: p.read_bytes() for p in picks_dir.glob("*/2024-01-02/*.parquet")}
    original = raw.read_bytes()
    raw.write_bytes(original)  # a replaced input: same bytes, newer file
    jobs = rules_and_wildcards(run(workdir, "-n", config=config))
    by_rule = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, []).append(wildcards)
    assert "download" not in by_rule
    assert sorted((w["picker"], w["day"]) for w in by_rule["pick"]) == sorted((p, "2024-01-02") for p in TINY["pickers"])
    # Associating a day reads its neighbours' picks (midnight), so both days of this run re-associate.
    assert len(by_rule["associate"]) == len(TINY["pickers"]) * 2
    assert len(by_rule["catalog"]) == len(by_rule["evaluate"]) == len(by_rule["review"]) == len(TINY["pickers"])
    run(workdir, config=config)
    for picker in TINY["pickers"]:  # the same bytes: every station-day from the cache, nothing repicked
        assert "0 picked, 0 without usable data, 4 unchanged" in pick_log_summary(workdir, picker, "2024-01-02")
    assert {p: p.read_bytes() for p in before} == before

    stream = obspy.read(str(raw))  # now different data: a 50 s burst of noise at noon
    trace = stream.select(channel="HHZ")[0]
    noon = int((obspy.UTCDateTime("2024-01-02T12:00:00") - trace.stats.starttime) * trace.stats.sampling_rate)
    trace.data[noon:noon + 5000] += (20 * trace.data.std() * np.random.default_rng(0).standard_normal(5000)).astype(trace.data.dtype)
    stream.write(str(raw), format="MSEED")
    run(workdir, config=config)
    for picker in TINY["pickers"]:
        assert "1 picked, 0 without usable data, 3 unchanged" in pick_log_summary(workdir, picker, "2024-01-02")
    changed = {p for p in before if p.read_bytes() != before[p]}
    assert changed <= {picks_dir / f"{picker}/2024-01-02/SY.S002.parquet" for picker in TINY["pickers"]}
    assert changed, "a 50 s burst at 20 times the noise left no pick"
    raw.write_bytes(original)  # leave the fixture as the other tests expect it
    run(workdir, config=config)


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_catalog(tiny_run, tmp_path):
    import os
    import signal
    import time
    from base64 import urlsafe_b64decode

    reference_dir, config = tiny_run
    (tmp_path / "velocity.csv").write_text((reference_dir / "velocity.csv").read_text())
    command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--cores", "2",
               "--configfile", str(config)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    picks_dir, cache_dir = tmp_path / "results/picks/stalta", tmp_path / "results/cache/picks"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(list(picks_dir.glob("*/*.parquet"))) < 5:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # Snakemake and its running jobs, no chance to clean up
    process.wait()
    # Outputs of jobs still running at the kill are marked incomplete and rightly redone.
    in_flight = {tmp_path / urlsafe_b64decode(marker.name).decode()
                 for marker in (tmp_path / ".snakemake/incomplete").rglob("*") if marker.is_file()}
    finished = {p: p.stat().st_mtime_ns for p in picks_dir.glob("*.parquet") if p not in in_flight}
    # Station-days a killed day job had picked are in its cache: the rerun copies them, never repicks.
    cached = {p: p.stat().st_mtime_ns for p in cache_dir.glob("*/*/*.parquet")}
    assert finished or cached, "the run was killed before any station-day was picked"
    assert not (tmp_path / "results/evaluation/summary.csv").exists()

    run(tmp_path, "--unlock", config=config)  # a hard kill leaves Snakemake's lock behind
    run(tmp_path, "--rerun-incomplete", config=config)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "a finished day was recomputed"
    assert {p: p.stat().st_mtime_ns for p in cached} == cached, "a picked station-day was picked again"
    for picker in TINY["pickers"]:
        resumed = (tmp_path / f"results/catalog/{picker}/pyocto.csv").read_text()
        uninterrupted = (reference_dir / f"results/catalog/{picker}/pyocto.csv").read_text()
        assert resumed == uninterrupted


@pytest.mark.slow
def test_report_command_of_the_readme_works_as_typed(tiny_run):
    """`snakemake --report results/report.html` with no --cores, after a run (README quick start)."""
    workdir, config = tiny_run
    snakemake(workdir, "--configfile", str(config), "--report", "results/report.html")
    report = workdir / "results/report.html"
    assert report.stat().st_size > 100_000
    assert "summary.csv" in report.read_text(errors="replace")


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def rendered_text(dom: str) -> str:
    """The visible text of the report's app element in a dumped DOM: the report's data travels in
    <script> elements, so only what the page's JavaScript rendered is left once they are dropped."""
    body = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", dom, flags=re.S)
    start = body.find('id="app"')
    assert start >= 0, "no app element in the dumped page"
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body[start:])))


def render_in_chromium(browser: str, page: Path, profile: Path) -> str:
    """The DOM of ``page`` after its scripts ran, from headless Chromium."""
    result = subprocess.run(
        # --no-sandbox: CI and containers run as root, where Chromium's sandbox refuses to start
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tiny_run, tmp_path):
    """What a person sees: the landing page lists the results and shows the headline table; a
    picker + associator's page lists its events, picks, candidates and scores."""
    browser = next((found for found in map(shutil.which, CHROMIUM_NAMES) if found), None)
    if browser is None:
        pytest.skip(f"needs headless Chromium ({' or '.join(CHROMIUM_NAMES)} on PATH; Debian package chromium, "
                    "which .ci/run installs with apt-get where it can)")
    workdir, config = tiny_run
    report = workdir / "results/report.html"
    if not report.exists():
        snakemake(workdir, "--configfile", str(config), "--report", "results/report.html")

    landing = rendered_text(render_in_chromium(browser, report, tmp_path / "profile"))
    assert "Results" in landing and "Overview" in landing
    for picker in TINY["pickers"]:
        assert f"{picker} + pyocto" in landing
    assert "Catalogs against the reference" in landing
    headline = tabular.read_table(workdir / "results/evaluation/headline.csv")
    for row in headline.itertuples(index=False):
        assert f"{row.catalog} {row.found} {row.precision:.2f} {row.real:.2f}" in landing

    # a category page, opened as a click on it would (the report's own app.showCategory)
    page = tmp_path / "category.html"
    text = report.read_text()
    script = "<script>setTimeout(function () { app.showCategory('stalta + pyocto'); }, 200);</script>"
    end = text.rindex("</body>")
    page.write_text(text[:end] + script + text[end:])
    category = rendered_text(render_in_chromium(browser, page, tmp_path / "profile"))
    for subcategory in ("Events", "Picks and stations", "Candidate new events", "Scores"):
        assert subcategory in category
