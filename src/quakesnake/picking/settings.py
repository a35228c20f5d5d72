"""Picker settings: the keys and defaults of each picker type, and their validation."""
from __future__ import annotations

SEISBENCH_DEFAULTS = {
    "type": "seisbench",
    "model": "PhaseNet",  # a seisbench.models WaveformModel class name, e.g. "EQTransformer"
    "weights": "instance",  # pretrained name ("instance", "stead", "ethz") or local path
    "version": None,  # weights version for from_pretrained; None = newest in the cache (else remote)
    "p_threshold": 0.3,
    "s_threshold": 0.3,
    "batch_size": None,  # windows per forward pass; None = by device, DEFAULT_BATCH_SIZES
    "device": "auto",  # "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N"
    "precision": "auto",  # "auto" (fp16 on CUDA, fp32 on CPU), "fp32", "fp16", "bf16"
    "overlap": None,  # window overlap in samples; None = the model's own default
    "engine": "quakesnake",  # "quakesnake" (the window pipeline here) or "seisbench" (model.classify)
    "screen": "auto",  # low-precision first pass, picks confirmed in fp32: "auto", "bf16", "fp16", "none"
    "screen_margin": 0.1,  # probability margin of the screening pass (see confirm_in_full_precision)
}


ENGINES = ("quakesnake", "seisbench")


SCREENS = ("auto", "bf16", "fp16", "none")


DEFAULT_BATCH_SIZES = {"cpu": 64, "cuda": 256}


# Defaults for local earthquakes (epicentral distances up to ~200 km, 100 Hz data):
# - 2-15 Hz removes microseism and long-period drift and keeps the impulsive onsets of small
#   local events, whose energy sits at a few Hz to ~15 Hz;
# - STA 0.5 s spans a few cycles of such onsets; LTA 10 s follows slow changes of the noise
#   without absorbing an event's own P coda before its S;
# - trigger_on 4 is not reached by stationary band-limited noise with these windows (a day of
#   Gaussian noise gives no pick), while a local event's onset easily exceeds it;
#   trigger_off 1.5 ends a trigger in the coda;
# - AIC searches a 2 s window centred on the trigger: the trigger lags an impulsive onset by a
#   fraction of the STA, and AIC needs noise before the onset to find it;
# - S is searched from 1 s (clear of the P's own peak on the horizontals) to 30 s
#   (S-P of ~240 km) after each P, with a lower threshold: the LTA already holds the P coda.
STALTA_DEFAULTS = {
    "type": "stalta",
    "bandpass_hz": [2.0, 15.0],  # the upper corner is capped below Nyquist
    "sta_s": 0.5,
    "lta_s": 10.0,
    "trigger_on": 4.0,
    "trigger_off": 1.5,
    "s_trigger_on": 3.0,
    "aic_window_s": 2.0,  # full width of the AIC search window, centred on the trigger
    "s_min_delay_s": 1.0,
    "s_window_s": 30.0,  # S is searched up to this long after each P
}


PICKER_TYPES = {"seisbench": SEISBENCH_DEFAULTS, "stalta": STALTA_DEFAULTS}


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


class PickerConfigError(ValueError):
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
    return {**defaults, **picker_cfg}


def default_batch_size(device) -> int:
    """Windows per forward pass when ``batch_size`` is null: :data:`DEFAULT_BATCH_SIZES` by device type."""
    device_type = device.type if hasattr(device, "type") else str(device).split(":")[0]
    return DEFAULT_BATCH_SIZES.get(device_type, DEFAULT_BATCH_SIZES["cpu"])
