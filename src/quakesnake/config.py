"""Workflow configuration: JSON-schema validation that also fills defaults.

The schema (workflow/schemas/config.schema.yaml) is the single place where defaults live;
config/config.yaml only states what the default scenario chooses on top of them.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators


class ConfigError(ValueError):
    """The configuration does not match the schema; the message names the key and the reason."""


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

    return validators.extend(validator_class, {"properties": set_defaults})


DefaultFillingValidator = _with_defaults(Draft202012Validator)


def load_schema(path) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def validate_config(config: dict, schema_path) -> dict:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError on the first problem."""
    schema = load_schema(schema_path)
    validator = DefaultFillingValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            lines.append(f"  {where}: {error.message}")
        raise ConfigError("configuration does not match " + str(schema_path) + ":\n" + "\n".join(lines))
    return config


def load_config(path, schema_path) -> dict:
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
    DefaultFillingValidator(schema).validate(config)
    return config
