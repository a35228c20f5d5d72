"""envs/quakesnake.yaml names the same packages, with the same pins, as pyproject.toml."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(requirements):
    return {re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in requirements}


def test_conda_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = requirement_names(project["dependencies"])
    env = yaml.safe_load((ROOT / "envs" / "quakesnake.yaml").read_text())
    conda, pip = [], []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip += item["pip"]
        elif not item.startswith(("python", "pip")):
            conda.append(item)
    in_env = requirement_names(conda) | requirement_names(pip)
    assert set(in_env) == set(declared)
    assert in_env == declared, "version constraints differ between envs/quakesnake.yaml and pyproject.toml"
