"""Picker settings: the keys and defaults of each picker type, and their validation."""
from __future__ import annotations

from quakesnake.config import typed_choices, typed_defaults
from quakesnake.errors import QuakesnakeError

# Every key and default of each picker type, and the reasons for them: the schema ($defs/picker).
SEISBENCH_DEFAULTS = typed_defaults("picker", "seisbench")
STALTA_DEFAULTS = typed_defaults("picker", "stalta")
CONSENSUS_DEFAULTS = typed_defaults("picker", "consensus")
PICKER_TYPES = {"seisbench": SEISBENCH_DEFAULTS, "stalta": STALTA_DEFAULTS, "consensus": CONSENSUS_DEFAULTS}
ENGINES = typed_choices("picker", "seisbench", "engine")
SCREENS = typed_choices("picker", "seisbench", "screen")
PRECISIONS = typed_choices("picker", "seisbench", "precision")
# windows per forward pass when batch_size is null: 256 PhaseNet windows spill a CPU's caches
DEFAULT_BATCH_SIZES = {"cpu": 64, "cuda": 256}


class PickerConfigError(QuakesnakeError, ValueError):
    """A picker configuration is invalid, or its model or weights cannot be loaded."""


def picker_settings(picker_cfg: dict) -> dict:
    """The picker configuration completed with defaults; an unknown type or key raises."""
    picker_type = picker_cfg.get("type")
    if picker_type not in PICKER_TYPES:
        raise PickerConfigError(f"picker type must be one of {sorted(PICKER_TYPES)}, got {picker_type!r}")
    defaults = PICKER_TYPES[picker_type]
    unknown = sorted(set(picker_cfg) - set(defaults))
    if unknown:
        raise PickerConfigError(
            f"unknown key(s) for a {picker_type} picker: {', '.join(unknown)} (known: {', '.join(sorted(defaults))})"
        )
    settings = {**defaults, **picker_cfg}
    if picker_type == "consensus":
        settings["tolerance_s"] = {**defaults["tolerance_s"], **picker_cfg.get("tolerance_s", {})}
        members = settings["members"]
        if not isinstance(members, list) or len(members) < 2:
            raise PickerConfigError(f"a consensus picker needs a list of two or more members, got {members!r}")
        settings["members"] = [picker_settings(member) for member in members]
        if not 1 <= settings["min_agree"] <= len(members):
            raise PickerConfigError(
                f"a consensus picker's min_agree must lie in 1..{len(members)} (its members), got {settings['min_agree']}")
    return settings


# A picker's SNR gate: dropping picks below an SNR needs the picks, not the picker, so a job that
# picks whole days applies it after its (cached) station-day picks (quakesnake.picking.shards).
SNR_GATE_KEYS = ("p_min_snr", "s_min_snr")


def ungated(settings: dict) -> dict:
    """Picker settings without their own SNR gate (a consensus' members keep theirs: which member
    picks count changes which picks agree)."""
    return {**settings, **dict.fromkeys(SNR_GATE_KEYS)}


def _single_pickers(picker_cfg: dict) -> list[dict]:
    """The picker itself, or a consensus picker's members (recursively): the pickers that run."""
    if picker_cfg.get("type") == "consensus":
        return [single for member in picker_cfg.get("members", []) for single in _single_pickers(member)]
    return [picker_cfg]


def runs_a_model(picker_cfg: dict) -> bool:
    """Whether a picker, or a member of a consensus picker, is a SeisBench model."""
    return any(single.get("type") == "seisbench" for single in _single_pickers(picker_cfg))


def asks_for_cuda(picker_cfg: dict) -> bool:
    """Whether a picker, or a member of a consensus picker, names a CUDA device (``auto`` does
    not): the pick job's ``gpu`` resource."""
    return any(single.get("type") == "seisbench" and str(single.get("device", "auto")).startswith("cuda")
               for single in _single_pickers(picker_cfg))


def default_batch_size(device) -> int:
    """Windows per forward pass when ``batch_size`` is null: :data:`DEFAULT_BATCH_SIZES` by device type."""
    device_type = device.type if hasattr(device, "type") else str(device).split(":")[0]
    return DEFAULT_BATCH_SIZES.get(device_type, DEFAULT_BATCH_SIZES["cpu"])
