"""The Snakemake profiles (profiles/*), their setup script and the container recipes.

- every profile dry-runs on a tiny scenario;
- profiles/leonardo runs for real against fake Slurm commands (sbatch, sacct, squeue, scontrol, sinfo,
  sacctmgr written into a temp dir and put first on PATH): sbatch records its argv and answers a job
  id, sacct/squeue report every job FAILED, so each run ends after its first submissions. Run once
  per stage, with the outputs of the stages before it already in place (empty files, older than
  what depends on them), so that every rule's exact submission line is captured;
- profiles/ada-cloud dry-runs against a local fake S3 endpoint (the Kubernetes executor needs a
  default storage provider; a dry run asks it which outputs exist);
- scripts/setup-profiles.sh, with HOME in a temp dir, makes `--profile leonardo` work as typed.

Nothing here touches the real home directory, a real cluster or the network.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from workflow_runs import ROOT, SNAKEMAKE, planned_jobs, snakemake

PROFILES = ("local", "leonardo", "ada-cloud")

TINY = {
    "days": {"start": "2024-01-01", "end": "2024-01-01"},
    "synthetic": {"n_stations": 3},
    "pickers": {"stalta": {"type": "stalta"}},
}
# 60 station-days in 2 day jobs per stage: one download group (a week), one pick group (2 picker-days)
SHARDED = {
    "days": {"start": "2024-01-01", "end": "2024-01-02"},
    "synthetic": {"n_stations": 30},
    "pickers": {"stalta": {"type": "stalta"}},
}
N_STATIONS, N_DAYS = 30, 2

ACCOUNT = "qs_test_account"
SECRET = f"eida-token-{uuid.uuid4().hex}"
SECRET_FILE_CONTENT = f"token-file-content-{uuid.uuid4().hex}"

STAGES = ["station_table", "scenario", "download", "pick", "associate", "locate", "magnitude"]
PARTITION = {
    "station_table": "lrd_all_serial",
    "scenario": "lrd_all_serial",
    "download": "lrd_all_serial",
    "pick": "boost_usr_prod",
    "associate": "dcgp_usr_prod",
    "locate": "dcgp_usr_prod",
    "magnitude": "dcgp_usr_prod",
}


def write_yaml(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


def clean_env(home: Path, **extra: str) -> dict:
    """The environment of a snakemake subprocess: no Slurm, Snakemake or project settings of the
    developer's shell, HOME in a temp dir (profiles, caches), plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SBATCH_", "SLURM_", "SQUEUE_", "QUAKESNAKE_", "SNAKEMAKE_", "XDG_CONFIG"))
    }
    env["HOME"] = str(home)
    env.update(extra)
    return env


# --------------------------------------------------------------------------- dry runs of every profile


class _EmptyS3(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint with no bucket: every object is missing (what a dry run of a new run sees)."""

    requests: list[str] = []

    def _reply(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802 (http.server API)
        self.requests.append(f"HEAD {self.path}")
        self._reply(404)

    def do_GET(self):  # noqa: N802
        self.requests.append(f"GET {self.path}")
        self._reply(404, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchBucket</Code></Error>")

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_s3():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EmptyS3)
    _EmptyS3.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _EmptyS3.requests
    server.shutdown()
    server.server_close()


def test_no_default_profile_and_every_profile_has_a_config():
    # An (even empty) profiles/default/ is taken as the workflow profile of every run and breaks it.
    assert not (ROOT / "profiles" / "default").exists()
    for name in PROFILES:
        assert (ROOT / "profiles" / name / "config.yaml").is_file()


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_dry_runs(profile, tmp_path, fake_s3):
    endpoint, s3_requests = fake_s3
    config = write_yaml(tmp_path / "tiny.yaml", TINY)
    env = clean_env(
        tmp_path / "home",
        QUAKESNAKE_SLURM_ACCOUNT=ACCOUNT,
        QUAKESNAKE_STORAGE_PREFIX="s3://quakesnake-test/run",
        SNAKEMAKE_STORAGE_S3_ENDPOINT_URL=endpoint,
        SNAKEMAKE_STORAGE_S3_ACCESS_KEY="test-access",
        SNAKEMAKE_STORAGE_S3_SECRET_KEY="test-secret",
        SNAKEMAKE_STORAGE_S3_REGION="us-east-1",
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = snakemake(workdir, "--profile", str(ROOT / "profiles" / profile), "--configfile", str(config),
                       "-n", env=env)
    output = result.stdout + result.stderr
    rules = [job["rule"] for job in planned_jobs(output)]
    # one day: one download job for its 3 station-days, one pick job per picker
    assert rules.count("download") == 1 and rules.count("pick") == 1, output[-3000:]
    assert "preprocess" not in rules and "merge" not in rules and rules.count("summary") == 1
    if profile == "ada-cloud":
        # every product lives under the storage prefix, and the dry run asked the endpoint about it
        assert "s3://quakesnake-test/run/results/picks/stalta/2024-01-01.parquet" in output
        assert any("/quakesnake-test/run/results/" in request for request in s3_requests)
    if profile == "leonardo":
        assert "slurm_partition=boost_usr_prod" in output
        assert f"slurm_account={ACCOUNT}" in output
    # snakemake adapt plans under every profile; on Leonardo its fine-tunes go to a GPU
    adapted = snakemake(workdir, "adapt", "-n", "--profile", str(ROOT / "profiles" / profile),
                        "--configfile", str(config), env=env)
    adapt_output = adapted.stdout + adapted.stderr
    assert [job["rule"] for job in planned_jobs(adapt_output)].count("adapt_train") == 2
    if profile == "leonardo":
        for rule in ("adapt_pick", "adapt_train"):
            job = next(block for block in adapt_output.split("\n\n") if f"rule {rule}:" in block)
            assert "slurm_partition=boost_usr_prod" in job and "gpu=1" in job, job


# --------------------------------------------------------------------------- what the profiles read from the environment


def load_profile(name: str) -> dict:
    """The profile as Snakemake's own parser reads it: YTE evaluated, mappings flattened to key=value."""
    from snakemake.profiles import ProfileConfigFileParser

    with open(ROOT / "profiles" / name / "config.yaml") as stream:
        return dict(ProfileConfigFileParser().parse(stream))


def test_leonardo_account_and_qos_come_from_the_environment(monkeypatch):
    for key in list(os.environ):
        if key.startswith(("QUAKESNAKE_", "SBATCH_")):
            monkeypatch.delenv(key)

    profile = load_profile("leonardo")
    assert not any(item.startswith("slurm_account=") for item in profile["default-resources"])
    assert not any(":qos=" in item for item in profile["set-resources"])

    monkeypatch.setenv("SBATCH_ACCOUNT", "from_sbatch_account")
    assert "slurm_account='from_sbatch_account'" in load_profile("leonardo")["default-resources"]

    monkeypatch.setenv("QUAKESNAKE_SLURM_ACCOUNT", "from_quakesnake")
    monkeypatch.setenv("QUAKESNAKE_SLURM_QOS_GPU", "boost_qos_dbg")
    monkeypatch.setenv("QUAKESNAKE_SLURM_QOS_CPU", "dcgp_qos_dbg")
    monkeypatch.setenv("QUAKESNAKE_DOWNLOAD_PARTITION", "dcgp_usr_prod")
    profile = load_profile("leonardo")
    assert "slurm_account='from_quakesnake'" in profile["default-resources"]
    resources = profile["set-resources"]
    assert "pick:qos='boost_qos_dbg'" in resources
    assert "associate:qos='dcgp_qos_dbg'" in resources and "magnitude:qos='dcgp_qos_dbg'" in resources
    # lrd_all_serial has a single QoS: its rules get none
    assert not any(item.startswith(("download:qos", "station_table:qos", "scenario:qos")) for item in resources)
    assert "download:slurm_partition=dcgp_usr_prod" in resources


def test_ada_cloud_storage_and_image_come_from_the_environment(monkeypatch):
    for key in list(os.environ):
        if key.startswith("QUAKESNAKE_"):
            monkeypatch.delenv(key)
    profile = load_profile("ada-cloud")
    # no prefix set: the key is left out (an empty value would be read as the profile's own directory)
    assert "default-storage-prefix" not in profile
    assert profile["default-storage-provider"] == "s3"
    monkeypatch.setenv("QUAKESNAKE_STORAGE_PREFIX", "s3://bucket/run7")
    monkeypatch.setenv("QUAKESNAKE_IMAGE", "registry.example.org/quakesnake:0.1.0-cuda")
    monkeypatch.setenv("QUAKESNAKE_K8S_GPU_NODE_TYPE", "gpu.a100")
    profile = load_profile("ada-cloud")
    assert profile["default-storage-prefix"] == "s3://bucket/run7"
    assert profile["container-image"] == "registry.example.org/quakesnake:0.1.0-cuda"
    assert "pick:gpu_manufacturer=nvidia" in profile["set-resources"]
    assert "pick:machine_type='gpu.a100'" in profile["set-resources"]


# --------------------------------------------------------------------------- setup script: `--profile NAME` as typed


def run_setup(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = clean_env(home)
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup-profiles.sh"), *args],
                          capture_output=True, text=True, env=env)


def test_setup_script_links_profiles_idempotently_and_bare_names_resolve(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    first = run_setup(home)
    assert first.returncode == 0, first.stdout + first.stderr
    config_dir = home / ".config" / "snakemake"
    for name in PROFILES:
        link = config_dir / name
        assert link.is_symlink() and link.resolve() == (ROOT / "profiles" / name).resolve()
    assert not (config_dir / "default").exists()
    second = run_setup(home)
    assert second.returncode == 0 and "link " not in second.stdout, second.stdout
    assert sorted(p.name for p in config_dir.iterdir()) == sorted(PROFILES)

    # as typed in the README: the bare name, from the checkout
    config = write_yaml(tmp_path / "tiny.yaml", TINY)
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = clean_env(home, QUAKESNAKE_SLURM_ACCOUNT=ACCOUNT)
    result = snakemake(workdir, "--profile", "leonardo", "--configfile", str(config), "-n", env=env, cwd=ROOT)
    assert "slurm_partition=boost_usr_prod" in result.stdout + result.stderr
    snakemake(workdir, "--profile", "local", "--configfile", str(config), "-n", env=env, cwd=ROOT)

    removed = run_setup(home, "--remove")
    assert removed.returncode == 0 and not any(config_dir.iterdir())


def test_setup_script_refuses_to_clobber_what_it_did_not_make(tmp_path):
    home = tmp_path / "home"
    foreign_dir = home / ".config" / "snakemake" / "local"
    foreign_dir.mkdir(parents=True)
    (foreign_dir / "config.yaml").write_text("cores: 1\n")
    elsewhere = tmp_path / "other-checkout" / "leonardo"
    elsewhere.mkdir(parents=True)
    (home / ".config" / "snakemake" / "leonardo").symlink_to(elsewhere)

    result = run_setup(home)
    assert result.returncode == 1
    assert "refuse" in result.stderr
    assert (foreign_dir / "config.yaml").read_text() == "cores: 1\n"
    assert (home / ".config" / "snakemake" / "leonardo").resolve() == elsewhere.resolve()
    assert (home / ".config" / "snakemake" / "ada-cloud").is_symlink()  # the others are still linked

    forced = run_setup(home, "--force")
    assert forced.returncode == 1  # the real directory is still refused ...
    assert (home / ".config" / "snakemake" / "leonardo").resolve() == (ROOT / "profiles" / "leonardo").resolve()
    assert (foreign_dir / "config.yaml").exists()  # ... and left alone


# --------------------------------------------------------------------------- Leonardo: captured sbatch lines

FAKE_SBATCH = """#!{python}
import json, os, pathlib, sys
state = pathlib.Path(os.environ["FAKE_SLURM_STATE"])
ids = state / "ids"
job_id = 1000 + (len(ids.read_text().split()) if ids.exists() else 0)
with open(ids, "a") as handle:
    handle.write(f"{{job_id}}\\n")
with open(state / "sbatch.jsonl", "a") as handle:
    handle.write(json.dumps({{"argv": sys.argv[1:], "stdin": sys.stdin.read(), "id": job_id}}) + "\\n")
print(job_id)
"""
# sacct/squeue: every submitted job has FAILED; the per-step reason queries (sacct -j ID.STEP) get nothing
FAKE_SACCT = """#!/bin/sh
case " $* " in *" -j "*) exit 0 ;; esac
[ -f "$FAKE_SLURM_STATE/ids" ] && sed 's/$/|FAILED/' "$FAKE_SLURM_STATE/ids"
exit 0
"""
FAKE_COMMANDS = {
    "sacct": FAKE_SACCT,
    "squeue": FAKE_SACCT,
    "scontrol": "#!/bin/sh\necho 'MaxArraySize            = 1001'\necho 'MinJobAge               = 300 sec'\n",
    "sinfo": "#!/bin/sh\necho 'boost_usr_prod dcgp_usr_prod lrd_all_serial'\n",
    "sacctmgr": f"#!/bin/sh\necho '{ACCOUNT}'\n",
    "sshare": f"#!/bin/sh\necho '{ACCOUNT}'\n",
    "scancel": "#!/bin/sh\nexit 0\n",
}


def write_fake_slurm(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    scripts = {"sbatch": FAKE_SBATCH.format(python=sys.executable), **FAKE_COMMANDS}
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    return bin_dir


def materialize(workdir: Path, jobs: list[dict], done_rules: set[str]) -> None:
    """Write the outputs of every job of ``done_rules`` as empty files, upstream ones older."""
    base = time.time() - 60
    for job in jobs:
        if job["rule"] not in done_rules:
            continue
        stamp = base + 5 * STAGES.index(job["rule"])
        for output in job["output"]:
            path = workdir / output
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
            os.utime(path, (stamp, stamp))


@pytest.fixture(scope="module")
def leonardo_submissions(tmp_path_factory):
    """Per stage, the sbatch calls (argv lists) of a real run of profiles/leonardo on SHARDED."""
    base = tmp_path_factory.mktemp("leonardo")
    bin_dir = write_fake_slurm(base / "bin")
    config = write_yaml(base / "sharded.yaml", SHARDED)
    token_file = base / "eida.token"
    token_file.write_text(SECRET_FILE_CONTENT)
    home = base / "home"
    home.mkdir()

    listing = base / "listing"
    listing.mkdir()
    dry = snakemake(listing, "--configfile", str(config), "-n", "--cores", "1", env=clean_env(home))
    jobs = planned_jobs(dry.stdout + dry.stderr)
    assert sum(job["rule"] == "pick" for job in jobs) == N_DAYS

    running = {}
    for index, stage in enumerate(STAGES):
        workdir = base / stage
        state = base / f"{stage}-slurm"
        workdir.mkdir()
        state.mkdir()
        materialize(workdir, jobs, set(STAGES[:index]))
        env = clean_env(
            home,
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            FAKE_SLURM_STATE=str(state),
            QUAKESNAKE_SLURM_ACCOUNT=ACCOUNT,
            EIDA_TOKEN=SECRET,
            QUAKESNAKE_EIDA_TOKEN=SECRET,
            QUAKESNAKE_EIDA_TOKEN_FILE=str(token_file),
        )
        command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                   "--profile", str(ROOT / "profiles" / "leonardo"), "--configfile", str(config),
                   "--slurm-init-seconds-before-status-checks", "1",
                   # the placeholder outputs are judged by their mtimes only (a script edited a
                   # moment ago must not make a finished stage run again)
                   "--rerun-triggers", "mtime"]
        log = open(base / f"{stage}.log", "w")
        running[stage] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir),
                          state, log)

    submissions = {}
    for stage, (process, state, log) in running.items():
        try:
            process.wait(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
        calls = state / "sbatch.jsonl"
        text = (base / f"{stage}.log").read_text()
        assert calls.exists(), f"stage {stage}: no sbatch call\n{text[-4000:]}"
        submissions[stage] = [json.loads(line) for line in calls.read_text().splitlines()]
    return submissions


def option(argv: list[str], name: str) -> list[str]:
    """Values of an sbatch option given as `-X value`, `--opt value` or `--opt=value`."""
    values = []
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(name + "="):
            values.append(arg.split("=", 1)[1])
    return values


def target_jobs(argv: list[str]) -> list[str]:
    """The jobs one submission runs: the --target-jobs of the wrapped snakemake call."""
    wrap = option(argv, "--wrap")
    assert len(wrap) == 1
    return re.findall(r"'(\w+):(?:[^']*)'", wrap[0].split("--target-jobs", 1)[1].split(" --", 1)[0])


@pytest.mark.slow
def test_leonardo_submits_each_rule_to_its_partition(leonardo_submissions):
    for stage, calls in leonardo_submissions.items():
        assert calls, stage
        for call in calls:
            argv = call["argv"]
            rules = set(target_jobs(argv))
            assert rules == {stage}, (stage, rules)
            assert option(argv, "-p") == [PARTITION[stage]], (stage, shlex.join(argv[:30]))
            assert option(argv, "-t") and option(argv, "--mem"), stage


@pytest.mark.slow
def test_leonardo_requests_one_gpu_once_for_pick_and_none_elsewhere(leonardo_submissions):
    for stage, calls in leonardo_submissions.items():
        for call in calls:
            argv = call["argv"]
            gpu_options = [a for a in argv if a.startswith(("--gres", "--gpus", "-G"))]
            if stage == "pick":
                assert gpu_options == ["--gpus=1"], gpu_options
                assert option(argv, "--cpus-per-task") == ["8"]
                assert option(argv, "--mem") == ["120000"]
            else:
                assert gpu_options == [], (stage, gpu_options)


@pytest.mark.slow
def test_leonardo_groups_day_jobs_and_one_gpu_serves_whole_days(leonardo_submissions):
    # a week of download days per submission, 2 picker-days per GPU submission: here, one each
    for stage in ("download", "pick"):
        calls = leonardo_submissions[stage]
        assert [len(target_jobs(call["argv"])) for call in calls] == [N_DAYS], stage
    # the day's downloads take the 4 cores lrd_all_serial allows, one day after the other
    for call in leonardo_submissions["download"]:
        assert option(call["argv"], "--cpus-per-task") == ["4"]
        assert int(option(call["argv"], "-t")[0]) == 60 * N_DAYS
    # pick: one GPU per submission; each job is a picker-day, every station of the day picked by one
    # process with one model load, and the group's jobs take turns on the GPU: runtime adds up
    for call in leonardo_submissions["pick"]:
        n_jobs = len(target_jobs(call["argv"]))
        assert int(option(call["argv"], "-t")[0]) == 45 * n_jobs
        wrap = option(call["argv"], "--wrap")[0]
        assert wrap.count("pick:") == n_jobs


@pytest.mark.slow
def test_leonardo_account_from_environment_and_no_secret_on_any_line(leonardo_submissions):
    for stage, calls in leonardo_submissions.items():
        for call in calls:
            argv = call["argv"]
            assert option(argv, "-A") == [ACCOUNT], (stage, shlex.join(argv[:20]))
            assert "--export=ALL" in argv  # the environment travels with the job, not on the line
            line = shlex.join(argv) + call["stdin"]
            assert SECRET not in line and SECRET_FILE_CONTENT not in line, stage


# --------------------------------------------------------------------------- container recipes (no engine here: static checks)


def test_container_recipes_install_the_checkout_as_pyproject_says():
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    dockerfile = (ROOT / "containers" / "Dockerfile").read_text()
    definition = (ROOT / "containers" / "quakesnake.def").read_text()

    # torch: the pin of pyproject.toml, read at build time by the helper both recipes call
    helper = subprocess.run([sys.executable, str(ROOT / "containers" / "torch-requirement.py"),
                             str(ROOT / "pyproject.toml")], capture_output=True, text=True, check=True)
    assert helper.stdout.strip() in pyproject["project"]["dependencies"]
    for recipe in (dockerfile, definition):
        assert "containers/torch-requirement.py pyproject.toml" in recipe
        # everything else at the locked versions
        assert re.search(r"pip install -r requirements/lock.txt \"/opt/quakesnake\[\$?\{?\{? ?EXTRAS ?\}?\}?\]\"", recipe), recipe
        assert "download.pytorch.org/whl/cpu" in recipe

    # Dockerfile: the checkout is the build context and is copied whole
    assert re.search(r"^COPY \. /opt/quakesnake$", dockerfile, re.M)
    default_extras = re.search(r"^ARG EXTRAS=(\S+)$", dockerfile, re.M).group(1)
    assert default_extras in extras
    ignored = (ROOT / "containers" / "Dockerfile.dockerignore").read_text().split()
    for needed in ("pyproject.toml", "src", "Snakefile", "workflow", "containers", "requirements"):
        assert needed not in ignored

    # Apptainer: every %files source exists in the checkout, pyproject and its readme among them
    files = re.search(r"^%files\n(.*?)(?:\n\n|\n%)", definition, re.S | re.M).group(1)
    sources = [line.split()[0] for line in files.splitlines() if line.strip()]
    assert {"pyproject.toml", pyproject["project"]["readme"], "src"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
    assert re.search(r"^\s+EXTRAS=(\S+)$", definition, re.M).group(1) in extras
