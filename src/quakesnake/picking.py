"""Phase picking on preprocessed station-day shards: SeisBench models or an STA/LTA + AIC baseline.

A picker configuration is a dict from the workflow config; ``type`` selects the picker:

``{"type": "seisbench", ...}`` — any ``seisbench.models`` WaveformModel (keys and defaults in
:data:`SEISBENCH_DEFAULTS`); ``weights`` is a local path or a SeisBench pretrained name, see
:func:`load_model`.

``{"type": "stalta", ...}`` — the classic baseline (keys and defaults in :data:`STALTA_DEFAULTS`):
recursive STA/LTA on the band-passed vertical triggers P, each trigger is refined with Maeda's
AIC; S is the strongest STA/LTA peak of the horizontal energy in a window after each P, refined
with AIC on the horizontals. ``probability`` is a quality ``1 - 0.5 * threshold / peak`` of the
STA/LTA peak: 0.5 at the trigger threshold, towards 1 for strong arrivals — the same range as ML
pick probabilities above their usual thresholds, so downstream filters treat both alike.

Picks are returned as a table with :data:`quakesnake.io.PICK_COLUMNS`; with ``day`` given, only
picks inside [day, day + 1 d) are kept (shards carry a margin of the neighbouring days so no
arrival is lost at midnight).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import obspy
import pandas as pd
from obspy.signal.filter import bandpass
from obspy.signal.trigger import recursive_sta_lta, trigger_onset

from quakesnake import io
from quakesnake.preprocess import true_runs

if TYPE_CHECKING:  # torch/seisbench take seconds to import; the STA/LTA picker never needs them
    import seisbench.models
    import torch

logger = logging.getLogger(__name__)

SEISBENCH_DEFAULTS = {
    "type": "seisbench",
    "model": "PhaseNet",  # a seisbench.models WaveformModel class name, e.g. "EQTransformer"
    "weights": "instance",  # pretrained name ("instance", "stead", "ethz") or local path
    "version": None,  # weights version for from_pretrained; None = newest in the cache (else remote)
    "p_threshold": 0.3,
    "s_threshold": 0.3,
    "batch_size": 256,
    "device": "auto",  # "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N"
    "precision": "auto",  # "auto" (fp16 on CUDA, fp32 on CPU), "fp32", "fp16", "bf16"
    "overlap": None,  # window overlap in samples; None = the model's own default
}

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
DEAD_RUN_S = 1.0  # a run of exact zeros at least this long is a (zero-filled) gap, not data


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


# --------------------------------------------------------------------------------------------
# SeisBench models


def load_model(picker_cfg: dict) -> seisbench.models.WaveformModel:
    """Build the configured SeisBench model with weights, on its device and precision, in eval mode.

    ``weights`` resolve in this order:

    1. a local path: ``base`` with ``base.json`` + ``base.pt`` beside it (what ``model.save(base)``
       writes; with ``version`` the files end in ``.v<version>``), the ``.pt`` or ``.json`` file
       itself, or a directory holding one such pair; a lone ``.pt`` state dict is loaded into the
       model built with default arguments;
    2. a pretrained name through SeisBench's cache (``SEISBENCH_CACHE_ROOT``), which works offline
       when the cache holds the files and downloads them otherwise.

    Fails with :class:`PickerConfigError` listing what was tried.
    """
    import torch

    settings = picker_settings(picker_cfg)
    model_class = _model_class(settings["model"])
    model = _load_weights(model_class, str(settings["weights"]), settings["version"])

    device = resolve_device(settings["device"])
    dtype = resolve_dtype(settings["precision"], device)
    model.to(device=device, dtype=dtype)
    if dtype != torch.float32:
        _cast_at_model_boundary(model)
    model.eval()
    logger.info("loaded %s weights %r on %s (%s)", model.name, settings["weights"], device, dtype)
    return model


def resolve_device(requested: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an explicit CUDA device must exist."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise PickerConfigError(f"invalid device {requested!r} ({exc})") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PickerConfigError(f"device {requested!r} requested but CUDA is not available (use 'auto' or 'cpu')")
    return device


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """Weight dtype for a precision on a device.

    ``auto`` is fp16 on CUDA (twice the throughput, picks unchanged to the sample) and fp32 on
    CPU. fp16 on CPU falls back to fp32 with a warning: CPUs have no fast fp16 kernels, so it
    costs accuracy for no speed. bf16 is honoured on CPU (fast on CPUs with AVX512-BF16/AMX);
    on a GPU without bf16 support it falls back to fp16.
    """
    import torch

    if precision not in PRECISIONS:
        raise PickerConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    on_cuda = device.type == "cuda"
    if precision == "auto":
        return torch.float16 if on_cuda else torch.float32
    if precision == "fp16" and not on_cuda:
        logger.warning("precision fp16 requested on %s: CPUs gain nothing from fp16, using fp32", device)
        return torch.float32
    if precision == "bf16" and on_cuda and not torch.cuda.is_bf16_supported():
        logger.warning("precision bf16 requested but %s does not support it: using fp16", device)
        return torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _model_class(name: str) -> type:
    import seisbench.models as sbm

    model_class = getattr(sbm, name, None)
    if not (isinstance(model_class, type) and issubclass(model_class, sbm.WaveformModel)):
        available = sorted(
            n for n, obj in vars(sbm).items()
            if isinstance(obj, type) and issubclass(obj, sbm.WaveformModel) and obj is not sbm.WaveformModel
        )
        raise PickerConfigError(f"unknown SeisBench model {name!r} (available: {', '.join(available)})")
    return model_class


def _load_weights(model_class: type, weights: str, version: str | None):
    """Resolve ``weights`` as a local path, else as a pretrained name (see :func:`load_model`)."""
    version = None if version is None else str(version)
    path = Path(weights).expanduser()
    suffix = "" if version is None else f".v{version}"
    looks_like_path = "/" in weights or "\\" in weights or path.suffix in (".pt", ".json") or path.exists()

    if path.is_dir():
        json_ending = ".json" + suffix
        bases = sorted(Path(str(p)[: -len(json_ending)]) for p in path.iterdir() if p.name.endswith(json_ending))
        pairs = [base for base in bases if Path(f"{base}.pt{suffix}").is_file()]
        if len(pairs) != 1:
            raise PickerConfigError(
                f"weights directory {path} must hold exactly one <name>.json{suffix} + <name>.pt{suffix} "
                f"pair, found {len(pairs)}"
            )
        path = pairs[0]
    base = path.with_suffix("") if path.suffix in (".pt", ".json") else path
    json_file, pt_file = Path(f"{base}.json{suffix}"), Path(f"{base}.pt{suffix}")

    if json_file.is_file() and pt_file.is_file():
        logger.info("loading %s weights from %s", model_class.__name__, pt_file)
        return model_class.load(base, version_str=version, map_location="cpu")
    if pt_file.is_file():
        logger.warning("%s has no %s beside it: building %s with default arguments", pt_file, json_file.name,
                       model_class.__name__)
        import torch

        model = model_class()
        model.load_state_dict(torch.load(pt_file, map_location="cpu", weights_only=True))
        return model
    if looks_like_path:
        raise PickerConfigError(
            f"weights {weights!r} look like a local path, but neither {pt_file} (+ {json_file.name}) "
            f"nor a directory holding such a pair exists"
        )
    return _from_pretrained(model_class, weights, version)


def _from_pretrained(model_class: type, name: str, version: str | None):
    import seisbench

    cache_dir = Path(seisbench.cache_model_root, model_class.__name__.lower())
    try:
        return model_class.from_pretrained(name, version_str=version or "latest")
    except Exception as exc:  # SeisBench raises ValueError, requests and OS errors; the user needs all of it
        cached = sorted(p.name for p in cache_dir.glob(f"{name}.*")) if cache_dir.is_dir() else []
        raise PickerConfigError(
            f"cannot load {model_class.__name__} weights {name!r} (version {version or 'latest'}). Tried: "
            f"local path {name!r} (not found); SeisBench cache {cache_dir} (holds: {', '.join(cached) or 'nothing'}; "
            f"set SEISBENCH_CACHE_ROOT to a cache with the files to work offline); "
            f"download from {seisbench.remote_model_root} ({type(exc).__name__}: {exc})"
        ) from exc


def _cast_at_model_boundary(model) -> None:
    """Cast the batch to the weights' dtype on the way in and predictions to fp32 on the way out.

    SeisBench builds fp32 input tensors and normalises them before ``forward`` (so raw counts never
    overflow fp16), and converts predictions with ``.numpy()``, which has no bf16. It calls
    ``forward`` in a worker thread, where a ``torch.autocast`` context of the caller would not
    apply; hooks on the module travel with it.
    """
    import torch

    dtype = next(model.parameters()).dtype

    def cast(value, to):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.to(to)
        if isinstance(value, (tuple, list)):
            return type(value)(cast(v, to) for v in value)
        return value

    model.register_forward_pre_hook(lambda module, args: cast(args, dtype))
    model.register_forward_hook(lambda module, args, output: cast(output, torch.float32))


def _pick_seisbench(stream: obspy.Stream, model, settings: dict) -> list[tuple]:
    """Picks of a SeisBench model as (network, station, location, phase, time, probability) rows.

    Missing components (one- or two-component stations) are zero-filled by SeisBench
    (``strict=False``, its default), as its data generators pad them in training
    (``missing_components="pad"``); Z12 instruments map onto ZNE (``flexible_horizontal_components``).
    SeisBench already runs ``forward`` under ``torch.no_grad`` in its worker thread, so an
    inference-mode context here would not reach it.
    """
    arguments = {
        "P_threshold": settings["p_threshold"],
        "S_threshold": settings["s_threshold"],
        "batch_size": settings["batch_size"],
    }
    if settings["overlap"] is not None:
        arguments["overlap"] = settings["overlap"]
    output = model.classify(stream, **arguments)

    rows = []
    for pick in output.picks:
        phase = str(pick.phase).upper()[:1]
        if phase not in ("P", "S"):
            continue
        network, station, location = pick.trace_id.split(".")[:3]
        rows.append((network, station, location, phase, pick.peak_time.ns, float(pick.peak_value)))
    return rows


# --------------------------------------------------------------------------------------------
# STA/LTA + AIC baseline


def aic_curve(x: np.ndarray) -> np.ndarray:
    """Maeda's AIC, ``k log var(x[:k]) + (n - k - 1) log var(x[k:])``, for every split k.

    Vectorised with cumulative sums; ``+inf`` where a side has fewer than two samples. The
    onset is the argmin: the split where two stationary segments explain the window best.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    aic = np.full(n, np.inf)
    if n < 4:
        return aic
    x = x - x.mean()  # cumulative sums of large offsets lose precision
    head_sum = np.cumsum(x)
    head_sq = np.cumsum(x * x)
    k = np.arange(2, n - 1)  # head x[:k] and tail x[k:] both hold >= 2 samples
    head_var = head_sq[k - 1] / k - (head_sum[k - 1] / k) ** 2
    tail_n = n - k
    tail_var = (head_sq[-1] - head_sq[k - 1]) / tail_n - ((head_sum[-1] - head_sum[k - 1]) / tail_n) ** 2
    floor = np.finfo(np.float64).tiny + 1e-20 * np.max(x * x)  # log(0) on dead (zero-filled) stretches
    aic[k] = k * np.log(np.maximum(head_var, floor)) + (n - k - 1) * np.log(np.maximum(tail_var, floor))
    return aic


def _pick_stalta(stream: obspy.Stream, settings: dict) -> list[tuple]:
    stream = stream.copy()
    stream.merge(method=1, fill_value=0)  # zero-filled gaps, as preprocess writes them
    by_instrument: dict[tuple[str, str, str], dict[str, obspy.Trace]] = defaultdict(dict)
    for trace in stream:
        by_instrument[trace.stats.network, trace.stats.station, trace.stats.location][trace.stats.channel[-1]] = trace

    rows = []
    for (network, station, location), components in sorted(by_instrument.items()):
        vertical = components.get("Z")
        if vertical is None:
            logger.warning("%s.%s.%s: no vertical component; STA/LTA picks nothing", network, station, location)
            continue
        horizontals = next(
            ([components[c] for c in pair if c in components] for pair in ("NE", "12") if set(pair) & set(components)),
            [],
        )
        for phase, time, quality in _stalta_station(vertical, horizontals, settings):
            rows.append((network, station, location, phase, time.ns, quality))
    return rows


def _stalta_station(vertical: obspy.Trace, horizontals: list[obspy.Trace], settings: dict):
    """Yield (phase, UTCDateTime, quality) for one instrument."""
    rate = vertical.stats.sampling_rate
    sta, lta = int(round(settings["sta_s"] * rate)), int(round(settings["lta_s"] * rate))
    aic_half = int(round(settings["aic_window_s"] * rate / 2))
    z_filtered = _bandpassed(vertical.data, rate, settings["bandpass_hz"])
    z_ratio = _sta_lta_blinded(z_filtered, vertical.data, sta, lta, rate)

    horizontal = _horizontal_view(horizontals, settings) if horizontals else None

    s_onset_time = None
    for on_index, off_index in trigger_onset(z_ratio, settings["trigger_on"], settings["trigger_off"]):
        trigger_time = vertical.stats.starttime + on_index / rate
        if s_onset_time is not None and abs(trigger_time - s_onset_time) <= settings["aic_window_s"] / 2:
            continue  # the S of the previous event seen on the vertical, not a new P
        start, end = max(on_index - aic_half, 0), min(on_index + aic_half, z_filtered.size)
        onset_index = start + int(np.argmin(aic_curve(z_filtered[start:end])))
        p_time = vertical.stats.starttime + onset_index / rate
        peak = float(z_ratio[on_index : off_index + 1].max())
        yield "P", p_time, _quality(peak, settings["trigger_on"])

        if horizontal is not None:
            s_pick = _pick_s(horizontal, p_time, settings)
            if s_pick is not None:
                s_onset_time = s_pick[0]
                yield "S", s_pick[0], s_pick[1]


def _horizontal_view(horizontals: list[obspy.Trace], settings: dict) -> dict | None:
    """Band-passed horizontals on their common time span, their energy's STA/LTA, and timing."""
    start = max(tr.stats.starttime for tr in horizontals)
    end = min(tr.stats.endtime for tr in horizontals)
    if end <= start:
        return None
    rate = horizontals[0].stats.sampling_rate
    aligned = [tr.slice(start, end) for tr in horizontals]
    n = min(tr.stats.npts for tr in aligned)
    raw = np.stack([tr.data[:n].astype(np.float64) for tr in aligned])
    filtered = np.stack([_bandpassed(row, rate, settings["bandpass_hz"]) for row in raw])
    energy = np.sqrt(np.sum(filtered**2, axis=0))  # STA/LTA squares it: N^2 + E^2
    sta, lta = int(round(settings["sta_s"] * rate)), int(round(settings["lta_s"] * rate))
    ratio = _sta_lta_blinded(energy, np.abs(raw).sum(axis=0), sta, lta, rate)
    return {"filtered": filtered, "ratio": ratio, "start": aligned[0].stats.starttime, "rate": rate}


def _pick_s(horizontal: dict, p_time: obspy.UTCDateTime, settings: dict):
    """The S after a P: the strongest interior STA/LTA peak in the window, refined by AIC."""
    ratio, filtered, rate = horizontal["ratio"], horizontal["filtered"], horizontal["rate"]
    p_index = int(round((p_time - horizontal["start"]) * rate))
    first = p_index + int(round(settings["s_min_delay_s"] * rate))
    last = min(p_index + int(round(settings["s_window_s"] * rate)), ratio.size)
    if first < 0 or last - first < 3:
        return None
    window = ratio[first:last]
    peak_offset = int(np.argmax(window))
    peak = float(window[peak_offset])
    if peak < settings["s_trigger_on"] or peak_offset in (0, window.size - 1):
        return None  # below threshold, or still rising/decaying at the edge: no S peak in this window
    # Walk back from the peak to where the ratio crossed the threshold: the S trigger.
    below = np.flatnonzero(window[:peak_offset] < settings["s_trigger_on"])
    trigger_index = first + (below[-1] + 1 if below.size else 0)

    aic_half = int(round(settings["aic_window_s"] * rate / 2))
    start = max(trigger_index - aic_half, p_index + 1)  # never let AIC see the P onset itself
    end = min(trigger_index + aic_half, ratio.size)
    if end - start < 4:
        return None
    combined = sum(aic_curve(component[start:end]) for component in filtered)
    onset_index = start + int(np.argmin(combined))
    return horizontal["start"] + onset_index / rate, _quality(peak, settings["s_trigger_on"])


def _bandpassed(data: np.ndarray, rate: float, corners) -> np.ndarray:
    """Causal Butterworth band-pass: a zero-phase filter would smear energy before the onset."""
    low, high = corners
    high = min(high, 0.45 * rate)
    return bandpass(np.asarray(data, dtype=np.float64), low, high, rate, corners=4, zerophase=False)


def _sta_lta_blinded(signal: np.ndarray, raw: np.ndarray, sta: int, lta: int, rate: float) -> np.ndarray:
    """Recursive STA/LTA, zero while the LTA warms up: at the start and after every zero-filled gap.

    A gap end looks like an onset from silence (the LTA is near zero), which is not an arrival.
    """
    ratio = recursive_sta_lta(np.ascontiguousarray(signal, dtype=np.float64), sta, lta)
    ratio[:lta] = 0.0
    for start, end in zip(*true_runs(raw == 0)):
        if end - start >= DEAD_RUN_S * rate:
            ratio[start : end + lta] = 0.0
    return ratio


def _quality(peak: float, threshold: float) -> float:
    return float(np.clip(1.0 - 0.5 * threshold / peak, 0.0, 1.0))


# --------------------------------------------------------------------------------------------
# Public entry points


def pick_stream(
    stream: obspy.Stream,
    picker_cfg: dict,
    *,
    day: str | None = None,
    model=None,
    picker_name: str = "",
) -> pd.DataFrame:
    """Pick P and S on a stream; a table with :data:`quakesnake.io.PICK_COLUMNS`, sorted by time.

    The stream is expected as :func:`quakesnake.preprocess.preprocess_stream` leaves it: one
    instrument per station, zero-filled gaps.

    ``model`` reuses an already loaded SeisBench model (see :func:`load_model`); ``day``
    ('YYYY-MM-DD') keeps only picks inside [day, day + 1 d).
    """
    settings = picker_settings(picker_cfg)
    if settings["type"] == "stalta":
        rows = _pick_stalta(stream, settings)
    else:
        rows = _pick_seisbench(stream, model if model is not None else load_model(picker_cfg), settings)

    picks = _picks_table(rows, picker_name)
    if day is not None:
        day_start = pd.Timestamp(day)
        inside = (picks["time"] >= day_start) & (picks["time"] < day_start + pd.Timedelta(days=1))
        picks = picks[inside]
    picks = picks.sort_values(["time", "network", "station", "location", "phase"], kind="stable")
    return picks.reset_index(drop=True)


def pick_file(in_mseed, out_parquet, picker_cfg: dict, day: str | None, picker_name: str, model=None) -> pd.DataFrame:
    """Read a preprocessed miniSEED shard, pick it, write the picks table atomically."""
    in_mseed = Path(in_mseed)
    try:
        stream = obspy.read(str(in_mseed), format="MSEED")
    except Exception as exc:  # ObsPy raises many types for unreadable files; the user needs file and reason
        raise ValueError(f"{in_mseed}: cannot read miniSEED ({type(exc).__name__}: {exc})") from exc
    picks = pick_stream(stream, picker_cfg, day=day, model=model, picker_name=picker_name)
    io.write_table(picks, out_parquet)
    logger.info(
        "%s: %d P and %d S picks (%s) -> %s", in_mseed.name, (picks["phase"] == "P").sum(),
        (picks["phase"] == "S").sum(), picker_name or picker_cfg.get("type"), out_parquet,
    )
    return picks


def _picks_table(rows: list[tuple], picker_name: str) -> pd.DataFrame:
    """Rows of (network, station, location, phase, time_ns, probability) as a typed picks table."""
    columns = list(zip(*rows)) if rows else [()] * 6
    network, station, location, phase, time_ns, probability = columns
    table = pd.DataFrame({
        "network": pd.Series(network, dtype=object),
        "station": pd.Series(station, dtype=object),
        "location": pd.Series(location, dtype=object),
        "phase": pd.Series(phase, dtype=object),
        "time": pd.to_datetime(pd.Series(time_ns, dtype=np.int64), unit="ns"),
        "probability": pd.Series(probability, dtype=np.float64),
        "picker": pd.Series([picker_name] * len(rows), dtype=object),
    })
    return table[io.PICK_COLUMNS]
