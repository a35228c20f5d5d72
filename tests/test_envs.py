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


def locked_versions() -> dict:
    """requirements/lock.txt as {canonical name: pinned version}."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_file_pins_every_declared_requirement_within_its_range():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pins = locked_versions()
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"requirements/lock.txt does not pin {name}: run requirements/compile.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements/lock.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}"
    # the public torch version: the same lock serves CPU and CUDA indexes
    assert "+" not in pins["torch"]
