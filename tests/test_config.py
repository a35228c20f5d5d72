"""The config schema, the default config and config/README.md stay in sync."""
from pathlib import Path

import pytest
import yaml

from quakesnake.config import ConfigError, load_config, load_schema, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def leaf_keys(schema, prefix=""):
    """Dotted names of every documented key: object properties, plus picker/associator options."""
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if sub.get("type") == "object" and "properties" in sub:
            yield from leaf_keys(sub, path + ".")
        else:
            yield path


def test_default_config_validates_and_fills_defaults():
    config = load_config(ROOT / "config" / "config.yaml", SCHEMA)
    assert config["preprocess"]["sampling_rate"] == 100.0
    assert config["pickers"]["stalta"]["sta_s"] == 0.5
    assert config["associators"]["pyocto"]["tolerance_s"] == 1.5


def test_unknown_keys_are_rejected_with_their_name():
    with pytest.raises(ConfigError, match="'colour' was unexpected"):
        validate_config({"preprocess": {"colour": "red"}}, SCHEMA)
    with pytest.raises(ConfigError, match="pickers.fast"):
        validate_config({"pickers": {"fast": {"type": "stalta", "sta": 1}}}, SCHEMA)


def test_bad_names_and_values_are_rejected():
    with pytest.raises(ConfigError, match="days.start"):
        validate_config({"days": {"start": "2024/01/01", "end": "2024-01-02"}}, SCHEMA)
    with pytest.raises(ConfigError):
        validate_config({"pickers": {"Bad.Name": {"type": "stalta"}}}, SCHEMA)


def test_every_schema_key_is_documented():
    readme = (ROOT / "config" / "README.md").read_text()
    schema = load_schema(SCHEMA)
    missing = [key for key in leaf_keys(schema) if f"`{key}" not in readme and f"`{key.split('.')[-1]}`" not in readme]
    for family in ("picker", "associator"):
        for branch in schema["$defs"][family]["allOf"]:
            missing += [k for k in branch["then"]["properties"] if k != "type" and f"`{k}`" not in readme and f"`{k.rsplit('_', 1)[0]}" not in readme]
    assert not missing, f"config/README.md does not document: {missing}"


def test_profiles_and_extra_configs_validate():
    for path in (ROOT / "config").glob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        validate_config(config, SCHEMA)


def test_schema_defaults_match_the_library_defaults():
    """The schema is where the workflow's defaults live; the library modules must agree with it."""
    from quakesnake import location, training
    from quakesnake.picking import picker_settings
    from quakesnake.sources import synthetic

    config = validate_config({"pickers": {"sb": {"type": "seisbench"}, "sl": {"type": "stalta"}}}, SCHEMA)
    library = {k: v for k, v in synthetic.DEFAULTS.items() if k != "stations_file"}
    assert config["synthetic"] == library
    for name in ("sb", "sl"):
        assert picker_settings({"type": config["pickers"][name]["type"]}) == config["pickers"][name]
    assert config["training"] == training.DEFAULTS
    assert {k: v for k, v in config["relocation"].items() if k != "enabled"} == location.DEFAULT_OPTIONS
