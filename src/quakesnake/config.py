"""Workflow configuration: JSON-schema validation that also fills defaults.

The schema (:data:`SCHEMA_PATH`, package data: ``src/quakesnake/schemas/config.schema.yaml``) is
the single place where defaults live. The workflow validates its config against it; the library
reads its defaults from it (:func:`section_defaults`, :func:`typed_defaults`), so a key and its
default are written once; config/config.yaml only states what the default scenario chooses on
top of them.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

from quakesnake.errors import QuakesnakeError

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"


class ConfigError(QuakesnakeError, ValueError):
    """The configuration does not match the schema; the message names the key and the reason."""


@functools.lru_cache(maxsize=4)
def _cached_schema(path: str) -> dict:
    with open(path) as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 8 ms, not 50


def defaults_of(subschema: dict) -> dict:
    """The defaults of an object schema's properties, nested objects filled by their own.

    Why not jsonschema: importing it costs 0.23 s in every job that only needs a default (the
    validator, :func:`validate_config`, fills the same values the same way: an object's
    ``default`` first, then its properties' defaults inside it).
    """
    filled = {}
    for name, prop in subschema.get("properties", {}).items():
        if "default" not in prop:
            continue
        value = copy.deepcopy(prop["default"])
        if isinstance(value, dict) and "properties" in prop:
            value = {**defaults_of(prop), **value}
        filled[name] = value
    return filled


def section_defaults(section: str) -> dict:
    """The defaults of a top-level section of the configuration (``preprocess``, ``magnitude``, ...)."""
    return defaults_of(_cached_schema(str(SCHEMA_PATH))["properties"][section])


def _typed_schema(kind: str, type_name: str) -> dict:
    definition = _cached_schema(str(SCHEMA_PATH))["$defs"][kind]
    for branch in definition.get("allOf", []):
        if branch["if"]["properties"]["type"].get("const") == type_name:
            return branch["then"]
    known = [b["if"]["properties"]["type"]["const"] for b in definition.get("allOf", [])]
    raise KeyError(f"no {kind} type {type_name!r} in {SCHEMA_PATH} (known: {', '.join(known)})")


def typed_defaults(kind: str, type_name: str) -> dict:
    """Every key and default of one type of a typed entry (``kind``: ``picker`` or ``associator``;
    ``type_name``: ``seisbench``, ``stalta``, ``pyocto``, ``gamma``), ``type`` included."""
    return {"type": type_name, **defaults_of(_typed_schema(kind, type_name))}


def typed_choices(kind: str, type_name: str, key: str) -> tuple:
    """The values an enumerated key of a typed entry may take (e.g. a SeisBench picker's ``precision``)."""
    return tuple(_typed_schema(kind, type_name)["properties"][key]["enum"])


def _with_defaults(validator_class):
    """Extend a validator so that ``properties`` fill missing keys from ``default`` first.

    Defaults are set before the nested properties are validated, so an object default of
    ``{}`` is filled in turn by the defaults of its own properties.
    """
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    from jsonschema import validators

    return validators.extend(validator_class, {"properties": set_defaults})


@functools.lru_cache(maxsize=1)
def _default_filling_validator_class():
    from jsonschema import Draft202012Validator  # 0.23 s: only where a whole config is validated

    return _with_defaults(Draft202012Validator)


def load_schema(path=SCHEMA_PATH) -> dict:
    """The schema as a new dict (callers may change it)."""
    return copy.deepcopy(_cached_schema(str(path)))


def validate_config(config: dict, schema_path=SCHEMA_PATH) -> dict:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError on the first problem."""
    schema = load_schema(schema_path)
    validator = _default_filling_validator_class()(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            lines.append(f"  {where}: {error.message}")
        raise ConfigError("configuration does not match " + str(schema_path) + ":\n" + "\n".join(lines))
    return config


def load_config(path, schema_path=SCHEMA_PATH) -> dict:
    """Read a YAML config file and validate it (outside Snakemake: CLI, benchmarks, tests)."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read configuration ({exc})") from exc
    return validate_config(config, schema_path)


def schema_defaults(schema: dict) -> dict:
    """The configuration that an empty config file yields (used to keep docs and schema in sync)."""
    return validate_config_dict({}, schema)


def validate_config_dict(config: dict, schema: dict) -> dict:
    _default_filling_validator_class()(schema).validate(config)
    return config
