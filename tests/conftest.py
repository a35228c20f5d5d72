"""Shared fixtures: the ../shared data beside the checkout and a private SeisBench cache."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

_session_seisbench_cache: Path | None = None


def pytest_configure(config):
    # SeisBench creates its cache directory (and a config.json) when it is imported, at
    # ~/.seisbench unless SEISBENCH_CACHE_ROOT says otherwise: point it at a throwaway
    # directory before any test module imports it, so tests never touch the home directory.
    global _session_seisbench_cache
    _session_seisbench_cache = Path(tempfile.mkdtemp(prefix="quakesnake-test-seisbench-"))
    os.environ["SEISBENCH_CACHE_ROOT"] = str(_session_seisbench_cache)


def pytest_unconfigure(config):
    if _session_seisbench_cache is not None:
        shutil.rmtree(_session_seisbench_cache, ignore_errors=True)


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout (read-only data and weights); skips when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED} beside the checkout")
    return SHARED


@pytest.fixture
def seisbench_cache(tmp_path, monkeypatch, shared_dir) -> Path:
    """A writable copy of ../shared/models/seisbench-cache that SeisBench uses as its cache.

    SeisBench reads SEISBENCH_CACHE_ROOT once, at import, into module attributes; the model
    classes look those attributes up on every call, so patching them (and the variable, for
    subprocesses) redirects an already imported SeisBench.
    """
    source = shared_dir / "models" / "seisbench-cache"
    if not source.is_dir():
        pytest.skip(f"needs the SeisBench cache {source}")
    cache = tmp_path / "seisbench-cache"
    shutil.copytree(source, cache)

    import seisbench

    monkeypatch.setenv("SEISBENCH_CACHE_ROOT", str(cache))
    monkeypatch.setattr(seisbench, "cache_root", cache)
    monkeypatch.setattr(seisbench, "cache_data_root", cache / "datasets")
    monkeypatch.setattr(seisbench, "cache_model_root", cache / "models" / "v3")
    monkeypatch.setattr(seisbench, "cache_aux_root", cache / "auxiliary")
    return cache


@pytest.fixture
def offline_seisbench(monkeypatch):
    """Make any SeisBench download fail at once (connection refused), whatever the network."""
    import seisbench

    monkeypatch.setattr(seisbench, "remote_root", "http://127.0.0.1:9/")
    monkeypatch.setattr(seisbench, "remote_model_root", "http://127.0.0.1:9/models/v3/")
    monkeypatch.setattr(seisbench, "remote_data_root", "http://127.0.0.1:9/datasets/")
