"""The config schema, the default config and config/README.md stay in sync."""
from pathlib import Path

import pytest
import yaml

from quakesnake.config import SCHEMA_PATH, ConfigError, load_config, load_schema, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = SCHEMA_PATH


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


def test_the_library_reads_its_defaults_from_the_schema_alone(tmp_path, monkeypatch):
    """One place for each default: a changed default in the schema is the library's new default."""
    from quakesnake import config as config_module

    full = validate_config({"pickers": {"sb": {"type": "seisbench"}, "sl": {"type": "stalta"}},
                            "associators": {"po": {"type": "pyocto"}, "ga": {"type": "gamma"}}}, SCHEMA)
    # the library's fast reader (no jsonschema) fills exactly what the validating workflow fills
    for section in ("preprocess", "magnitude", "training", "synthetic", "evaluation", "association", "report", "review", "relocation"):
        assert config_module.section_defaults(section) == full[section], section
    for kind, entries in (("picker", full["pickers"]), ("associator", full["associators"])):
        for entry in entries.values():
            assert config_module.typed_defaults(kind, entry["type"]) == entry

    edited = tmp_path / "config.schema.yaml"
    edited.write_text(SCHEMA.read_text().replace("sta_s: {type: number, exclusiveMinimum: 0, default: 0.5}",
                                                 "sta_s: {type: number, exclusiveMinimum: 0, default: 0.7}"))
    monkeypatch.setattr(config_module, "SCHEMA_PATH", edited)
    assert config_module.typed_defaults("picker", "stalta")["sta_s"] == 0.7
    with pytest.raises(KeyError, match="no picker type 'phasenet'"):
        config_module.typed_defaults("picker", "phasenet")


def _readme_defaults():
    """(section, type or None, key, shown default) of every table row of config/README.md."""
    import re

    section = kind = None
    for line in (ROOT / "config" / "README.md").read_text().splitlines():
        if line.startswith("## "):
            section, kind = line[3:].split()[0], None
        elif re.match(r"^`type: [a-z]+`", line):
            kind = line.split("`")[1].split(": ")[1]
        elif line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            keys = re.findall(r"`([a-z_.]+)`", cells[0])
            shown = [part.strip().strip("`") for part in cells[1].split(" / ")] if cells[1].startswith("`") else []
            if len(shown) == len(keys):
                yield from ((section, kind, key, value) for key, value in zip(keys, shown))


def test_config_readme_shows_the_schema_defaults():
    """The documented default of every key is the schema's (the README is prose over the schema)."""
    from quakesnake.config import section_defaults, typed_defaults

    wrong, checked = [], 0
    for section, kind, key, shown in _readme_defaults():
        if kind:
            defaults = typed_defaults({"pickers": "picker", "associators": "associator"}[section], kind)
            path = [key]
        else:
            defaults = {section: section_defaults(section)} if section in load_schema()["properties"] and \
                load_schema()["properties"][section].get("type") == "object" else validate_config({})
            path = key.split(".")
        value = defaults
        for part in path:
            value = value.get(part, KeyError) if isinstance(value, dict) else KeyError
        if value is KeyError:
            continue  # a row naming a value of a key (e.g. a domain's fields), not a key
        checked += 1
        if yaml.safe_load(shown) != value:
            wrong.append(f"{section}{'/' + kind if kind else ''} {key}: README {shown}, schema {value}")
    assert checked > 80 and not wrong, wrong
