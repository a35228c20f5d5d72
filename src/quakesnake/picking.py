"""Phase picking on preprocessed station-day shards: SeisBench models or an STA/LTA + AIC baseline.

A picker configuration is a dict from the workflow config; ``type`` selects the picker:

``{"type": "seisbench", ...}`` — any ``seisbench.models`` WaveformModel (keys and defaults in
:data:`SEISBENCH_DEFAULTS`); ``weights`` is a local path or a SeisBench pretrained name, see
:func:`load_model`. Array-output models (PhaseNet, EQTransformer, …) run through the project's
window pipeline (``engine: quakesnake``): SeisBench's ``classify`` computed with less overhead,
batches spread over the CPU's threads, and on CPUs with native bf16 a bf16 screen whose
possible picks are recomputed in fp32 (``screen``); benchmarks/pick_throughput.py measures it
against ``classify``. :func:`pick_files` picks many shards with one model load.

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
import os
import weakref
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
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

# OpenMP threads that wait for work by spinning (libgomp's default) wreck torch on a shared CPU:
# while the calling thread stacks predictions, its idle helper spins on the CPU time the
# other processes and the caller need. PhaseNet on 6 h of data, 2 threads, machine at load 7:
# 10-23 s spinning against 1.5 s sleeping (benchmarks/pick_throughput.py). libgomp reads this
# when torch loads; this module never imports torch at import time, and a user's choice wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
    "screen_margin": 0.1,  # probability margin of the screening pass (see _confirm)
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
SHIPPED_WEIGHTS_DIR = Path(__file__).parent / "weights"
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
    2. weights this project trained and ships (``src/quakesnake/weights/<model>/<name>.json|.pt``,
       e.g. PhaseNet ``quakesnake-synthetic``; see config/train-phasenet.yaml for how);
    3. a pretrained name through SeisBench's cache (``SEISBENCH_CACHE_ROOT``), which works offline
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
    shipped = SHIPPED_WEIGHTS_DIR / model_class.__name__.lower() / f"{weights}.json{suffix}"
    if shipped.is_file():
        logger.info("loading the project's %s weights %r from %s", model_class.__name__, weights, shipped.parent)
        return model_class.load(shipped.parent / weights, version_str=version, map_location="cpu")
    if looks_like_path:
        raise PickerConfigError(
            f"weights {weights!r} look like a local path, but neither {pt_file} (+ {json_file.name}) "
            f"nor a directory holding such a pair exists"
        )
    return _from_pretrained(model_class, weights, version)


def weights_identity(picker_cfg: dict) -> list | None:
    """What identifies a picker's weights without loading them: the digests of the local or
    shipped files that :func:`_load_weights` would read, else the pretrained name and version
    (SeisBench's cache never changes the files of a version). None for STA/LTA.

    The pick stage keys its station-day cache on it, so retrained weights saved over the same
    path give new picks.
    """
    from quakesnake.cache import file_digest

    settings = picker_settings(picker_cfg)
    if settings["type"] != "seisbench":
        return None
    weights, version = str(settings["weights"]), settings["version"]
    suffix = "" if version is None else f".v{version}"
    path = Path(weights).expanduser()
    base = path.with_suffix("") if path.suffix in (".pt", ".json") else path
    shipped = SHIPPED_WEIGHTS_DIR / settings["model"].lower() / weights
    candidates = sorted(path.iterdir()) if path.is_dir() else [
        Path(f"{base}.json{suffix}"), Path(f"{base}.pt{suffix}"),
        Path(f"{shipped}.json{suffix}"), Path(f"{shipped}.pt{suffix}")]
    files = [c for c in candidates if c.is_file()]
    if files:
        return [settings["model"], [(f.name, file_digest(f)) for f in files]]
    return [settings["model"], "pretrained", weights, version]


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

    ``engine: quakesnake`` runs the window pipeline (:func:`_stacked_predictions`) on every
    instrument it supports and SeisBench's ``classify`` on the rest; ``engine: seisbench`` runs
    ``classify`` on everything. Both fill missing components (one- or two-component stations)
    with zeros (SeisBench's ``strict=False``), as its data generators pad them in training
    (``missing_components="pad"``), and map Z12 instruments onto ZNE
    (``flexible_horizontal_components``). Either way, picks inside dead stretches of data are
    dropped (:func:`_outside_dead_stretches`).
    """
    batch_size = _batch_size(model, settings)
    if _use_classify(model, settings):
        rows = _classify_rows(stream, model, settings, batch_size)
    else:
        rows, leftovers = [], obspy.Stream()
        for trace_id, start, stacked in _window_results(stream, model, settings, batch_size, leftovers):
            rows += _triggered_picks(trace_id, start, stacked, model, settings)
        if leftovers:
            rows += _classify_rows(leftovers, model, settings, batch_size)
    return _outside_dead_stretches(rows, stream)


def _dead_stretches(traces: list[obspy.Trace]) -> np.ndarray:
    """(start ns, end ns) rows of the stretches where every trace of one instrument holds one
    constant value for at least :data:`DEAD_RUN_S`: zero-filled gaps, flat-lined or clipped-dead
    channels. A network normalises each window by its spread, so a window of such data (or one
    with a step into it) is an artefact it was never shown, and its output there means nothing."""
    common = None
    for trace in traces:
        data = np.asarray(trace.data)
        rate = trace.stats.sampling_rate
        starts, ends = true_runs(np.diff(data) == 0)  # run of diffs [start, end) = samples [start, end]
        long = ends - starts + 1 >= DEAD_RUN_S * rate
        t0 = trace.stats.starttime.ns
        spans = np.column_stack([t0 + np.round(starts[long] / rate * 1e9), t0 + np.round(ends[long] / rate * 1e9)])
        common = spans if common is None else _intersect_spans(common, spans)
    return np.empty((0, 2)) if common is None else common


def _intersect_spans(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two sorted lists of disjoint [start, end] spans."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if start <= end:
            out.append((start, end))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.array(out, dtype=float).reshape(-1, 2)


def _outside_dead_stretches(rows: list[tuple], stream: obspy.Stream) -> list[tuple]:
    """The pick rows not inside a dead stretch (see :func:`_dead_stretches`) of their instrument."""
    if not rows:
        return rows
    by_instrument: dict[tuple, list] = defaultdict(list)
    for trace in stream:
        if trace.stats.npts > 1:
            by_instrument[(trace.stats.network, trace.stats.station, trace.stats.location)].append(trace)
    dead = {key: _dead_stretches(traces) for key, traces in by_instrument.items()}
    kept = []
    for row in rows:
        spans = dead.get(tuple(row[:3]))
        if spans is not None and len(spans):
            index = np.searchsorted(spans[:, 0], row[4], side="right") - 1
            if index >= 0 and row[4] <= spans[index, 1]:
                continue
        kept.append(row)
    if len(kept) < len(rows):
        logger.info("dropped %d pick(s) inside dead (constant) stretches of data", len(rows) - len(kept))
    return kept


def _batch_size(model, settings: dict) -> int:
    if settings["engine"] not in ENGINES:
        raise PickerConfigError(f"engine must be one of {ENGINES}, got {settings['engine']!r}")
    return settings["batch_size"] or default_batch_size(model.device)


def _use_classify(model, settings: dict) -> bool:
    """True for ``engine: seisbench`` and for models the window pipeline does not reproduce."""
    if settings["engine"] == "seisbench":
        return True
    unsupported = _window_pipeline_unsupported(model)
    if unsupported:
        logger.info("%s: %s; using SeisBench's classify", model.name, unsupported)
    return unsupported is not None


def _window_results(stream: obspy.Stream, model, settings: dict, batch_size: int, leftovers: obspy.Stream):
    """Yield (instrument id, start, stacked predictions) per instrument of the stream; the traces
    of instruments the pipeline cannot take as SeisBench would are appended to ``leftovers``."""
    for trace_id, traces in _instruments(stream, model):
        prepared = _instrument_array(traces, model)
        if isinstance(prepared, str):
            logger.info("%s: %s; leaving it to SeisBench", trace_id, prepared)
            leftovers += obspy.Stream(traces)
            continue
        start, data = prepared
        yield trace_id, start, _stacked_predictions(trace_id, data, model, settings, batch_size)


def default_batch_size(device) -> int:
    """Windows per forward pass when ``batch_size`` is null: :data:`DEFAULT_BATCH_SIZES` by device type."""
    device_type = device.type if hasattr(device, "type") else str(device).split(":")[0]
    return DEFAULT_BATCH_SIZES.get(device_type, DEFAULT_BATCH_SIZES["cpu"])


def _classify_rows(stream: obspy.Stream, model, settings: dict, batch_size: int) -> list[tuple]:
    """Picks of SeisBench's own ``classify`` (it runs ``forward`` under ``no_grad`` in a worker thread)."""
    arguments = {"P_threshold": settings["p_threshold"], "S_threshold": settings["s_threshold"],
                 "batch_size": batch_size}
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


# The window pipeline: what SeisBench's classify does for array-output pickers (PhaseNet,
# EQTransformer and their kin), step for step and with its numbers up to float rounding, minus
# its overheads: no stream copies, one float32 array per instrument instead of float64, windows
# batched straight from it (64 per batch on a CPU instead of 256: the activations of 256
# PhaseNet windows spill the caches), predictions stacked as they come (no list of every
# window's output), torch.inference_mode, BatchNorm folded into the convolutions, picks from
# plain arrays; and, on CPUs with native bf16, a bf16 screen whose possible picks are
# recomputed in fp32 (see _confirm).


def _phase_labels(model) -> list[str]:
    """The output channels classify turns into picks, as PhaseNet's and EQTransformer's classify_aggregate do."""
    import seisbench.models as sbm

    if isinstance(model, sbm.EQTransformer):
        return list(model.phases)
    return [label for label in model.labels if label != "N"]


def _window_pipeline_unsupported(model) -> str | None:
    """Why the window pipeline cannot stand in for this model's classify, or None when it can."""
    import seisbench.models as sbm

    if model.output_type != "array" or model._grouping.grouping != "instrument":
        return f"output type {model.output_type!r} with grouping {model._grouping.grouping!r}"
    if tuple(model.pred_sample) != (0, model.in_samples):
        return f"predictions cover samples {tuple(model.pred_sample)} of {model.in_samples}"
    if model.filter_args is not None or model.filter_kwargs is not None:
        return "the model filters its input"
    if model.sampling_rate is None:
        return "the model declares no sampling rate"
    if type(model).classify_aggregate not in (sbm.PhaseNet.classify_aggregate, sbm.EQTransformer.classify_aggregate):
        return "the model has its own classify_aggregate"
    if model.labels is None or callable(model.labels):
        return "the model's output channels are not named"
    phases = set(_phase_labels(model))
    if not phases <= {"P", "S"} or not phases <= set(model.labels):
        return f"phase labels {sorted(phases)} are not P and S output channels"
    return None


def _component_indices(model) -> dict[str, int]:
    """Component code -> input channel, with 1/2 standing in for N/E (SeisBench's flexible_horizontal_components)."""
    indices = {component: i for i, component in enumerate(model.component_order)}
    for unoriented, geographic in (("1", "N"), ("2", "E")):
        if geographic in indices:
            indices.setdefault(unoriented, indices[geographic])
        elif unoriented in indices:
            indices.setdefault(geographic, indices[unoriented])
    return indices


def _instruments(stream: obspy.Stream, model) -> list[tuple[str, list[obspy.Trace]]]:
    """The stream's traces of the model's components by instrument ('NET.STA.LOC'), sorted."""
    indices = _component_indices(model)
    by_instrument: dict[str, list[obspy.Trace]] = defaultdict(list)
    for trace in stream:
        if trace.stats.npts > 0 and trace.stats.channel[-1:] in indices:
            stats = trace.stats
            by_instrument[f"{stats.network}.{stats.station}.{stats.location}"].append(trace)
    return sorted(by_instrument.items())


def _instrument_array(traces: list[obspy.Trace], model) -> tuple[obspy.UTCDateTime, np.ndarray] | str:
    """(start time, float32 array components x samples) of one instrument, missing components zero.

    Times are aligned to the sample grid as SeisBench aligns them (the sub-sample offsets are
    averaged back into the start). Anything SeisBench groups in a way of its own (several
    traces of one component, a hole in the coverage, another sampling rate, masked data, a
    stretch shorter than one window) is returned as the reason, for ``classify`` to handle.
    """
    rate = float(model.sampling_rate)
    indices = _component_indices(model)
    if any(trace.stats.sampling_rate != rate for trace in traces):
        return f"sampling rate differs from the model's {rate:g} Hz (classify resamples)"
    if len({indices[trace.stats.channel[-1]] for trace in traces}) != len(traces):
        return "several traces for one component (gaps not filled, or both N/E and 1/2)"
    if any(np.ma.isMaskedArray(trace.data) for trace in traces):
        return "masked (gappy) data"
    timestamps = np.array([trace.stats.starttime.timestamp for trace in traces])
    aligned = np.round(timestamps * rate) / rate
    first = aligned.min()
    offsets = np.round((aligned - first) * rate).astype(np.int64)
    ends = offsets + np.array([trace.stats.npts for trace in traces])
    order = np.argsort(offsets, kind="stable")
    if np.any(offsets[order][1:] > np.maximum.accumulate(ends[order] - 1)[:-1]):
        return "the components do not overlap in time"
    n_samples = int(ends.max())
    if n_samples < model.in_samples:
        return f"shorter than one window ({n_samples} < {model.in_samples} samples)"
    data = np.zeros((len(model.component_order), n_samples), dtype=np.float32)
    for trace, offset in zip(traces, offsets):
        data[indices[trace.stats.channel[-1]], offset : offset + trace.stats.npts] = trace.data
    start = obspy.UTCDateTime(first) + float(np.mean(timestamps - aligned))
    return start, data


def _window_offsets(n_samples: int, in_samples: int, overlap: int) -> np.ndarray:
    """Window starts as SeisBench cuts them: a fixed stride, plus one window flush with the end."""
    if not 0 <= overlap < in_samples:
        raise PickerConfigError(f"overlap must be at least 0 and below the window of {in_samples} samples, got {overlap}")
    offsets = np.arange(0, n_samples - in_samples + 1, in_samples - overlap)
    if offsets[-1] + in_samples < n_samples:
        offsets = np.append(offsets, n_samples - in_samples)
    return offsets


def _stacked_predictions(trace_id: str, data: np.ndarray, model, settings: dict, batch_size: int) -> np.ndarray:
    """One instrument's predictions (samples x output channels, NaN where no window reaches),
    window by window and stacked.

    The same windows, normalisation (the model's ``annotate_batch_pre``), blinding
    (``annotate_batch_post``) and stacking (``avg``: mean of the non-NaN window values, summed
    in window order as SeisBench's ``stack_windows`` sums them; ``max``) as SeisBench's
    ``annotate``, with the model's forward run by its :func:`_fast_copy` (equal up to float
    rounding). With a screening precision (see :func:`resolve_screen_dtype`) the windows first
    run through a low-precision copy, then :func:`_confirm` recomputes in full precision every
    window that touches a possible pick.
    """
    argdict = dict(model.default_args)
    if settings["overlap"] is not None:
        argdict["overlap"] = settings["overlap"]
    overlap = model._get_overlap(model.in_samples, argdict)
    stacking = model._argdict_get_with_default(argdict, "stacking").lower()
    if stacking not in ("avg", "max"):
        raise PickerConfigError(f"{model.name}: unknown stacking method {stacking!r}")
    offsets = _window_offsets(data.shape[1], model.in_samples, overlap)
    windows = _Windows(data, offsets, model, argdict, batch_size, stacking)
    thresholds = {"P": settings["p_threshold"], "S": settings["s_threshold"]}
    labels = list(model.labels)
    phases = _phase_labels(model)

    screen_dtype = resolve_screen_dtype(settings["screen"], model)
    floors = {labels.index(phase): thresholds[phase] / 2 - settings["screen_margin"] for phase in phases}
    screen = None if screen_dtype is None else _fast_copy(model, screen_dtype)
    if screen is not None and (unprofitable := _screen_unprofitable(windows, screen, floors)):
        logger.info("%s: %s; no screening", trace_id, unprofitable)
        screen = None
    if screen is None:
        stacked = windows.stack(0, data.shape[1], {windows.full: range(len(offsets))})
    else:
        stacked = windows.stack(0, data.shape[1], {screen: range(len(offsets))})
        _confirm(stacked, windows, screen, floors, settings["screen_margin"], trace_id)
    return stacked


def _trimmed(values: np.ndarray, start, rate: float):
    """(start, values) without the NaN edges, as SeisBench trims its annotation traces."""
    covered = np.flatnonzero(~np.isnan(values))
    if covered.size == 0:
        return start, values[:0]
    return start + int(covered[0]) / rate, values[int(covered[0]) : int(covered[-1]) + 1]


def _triggers(probability: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """``trigger_onset(probability, threshold, threshold / 2)``, run only on the stretches at or
    above half the threshold that reach the threshold: a trigger ends at the last sample of such
    a stretch, so cutting between stretches changes nothing, and ObsPy's scan of a whole day
    costs ~0.35 s per phase (measured), most of it on samples that cannot trigger."""
    high = np.flatnonzero(probability >= threshold)
    if high.size == 0:
        return []
    if high.size > probability.size // 100:  # high most of the time (an untrained model): no stretches to skip
        return [(int(on), int(off)) for on, off in trigger_onset(probability, threshold, threshold / 2)]
    starts, ends = true_runs(probability >= threshold / 2)
    following = np.searchsorted(high, starts)  # first sample at or above the threshold from each start
    holds = following < high.size
    holds[holds] = high[following[holds]] < ends[holds]
    return [(int(start + on), int(start + off)) for start, end in zip(starts[holds], ends[holds])
            for on, off in trigger_onset(probability[start:end], threshold, threshold / 2)]


def _triggered_picks(trace_id: str, start, stacked: np.ndarray, model, settings: dict) -> list[tuple]:
    """Picks as SeisBench's ``picks_from_annotations`` triggers them: on at the threshold, off at
    half of it, the peak in between."""
    rate, labels = float(model.sampling_rate), list(model.labels)
    thresholds = {"P": settings["p_threshold"], "S": settings["s_threshold"]}
    network, station, location = trace_id.split(".")
    rows = []
    for phase in _phase_labels(model):
        trimmed_start, probability = _trimmed(stacked[:, labels.index(phase)], start, rate)
        threshold = thresholds[phase]
        for on, off in _triggers(probability, threshold):
            peak = on + int(np.argmax(probability[on : off + 1]))
            rows.append((network, station, location, phase, (trimmed_start + peak / rate).ns, float(probability[peak])))
    return rows


def _screen_unprofitable(windows: _Windows, screen, floors: dict[int, float]) -> str | None:
    """Why screening would recompute most windows anyway (and so cost more than it saves), or None.

    Judged on the first batch of windows: a model whose probabilities sit above the floors in
    plain noise (an untrained one, or thresholds close to the margin) touches most of them.
    """
    if min(floors.values()) <= 0:
        return "half the threshold minus the margin is not above zero"
    probe = np.arange(min(len(windows.offsets), windows.batch_size))
    end = int(windows.offsets[probe[-1]]) + windows.in_samples
    stacked = windows.stack(0, end, {screen: probe})
    candidate = np.logical_or.reduce([stacked[:, channel] >= floor for channel, floor in floors.items()])
    touched = _touching(candidate, windows.offsets[probe], windows.in_samples).size
    if touched > probe.size // 2:
        return f"{touched} of the first {probe.size} windows touch possible picks"
    return None


def _touching(candidate: np.ndarray, offsets: np.ndarray, in_samples: int) -> np.ndarray:
    """Indices of the windows (starts sorted) whose span holds a candidate sample."""
    samples = np.flatnonzero(candidate)
    following = np.searchsorted(samples, offsets)  # first candidate at or after each window's start
    inside = following < samples.size
    inside[inside] = samples[following[inside]] < offsets[inside] + in_samples
    return np.flatnonzero(inside)


def _confirm(stacked: np.ndarray, windows: _Windows, screen, floors: dict[int, float], margin: float,
             trace_id: str) -> None:
    """Recompute in full precision every window touching a sample whose screened probability
    reaches ``floors`` (per phase channel: half the trigger threshold minus the margin), in place.

    Picks depend only on where a probability exceeds its threshold, where it falls below half
    of it, and on the values in between (SeisBench's trigger). Every sample that can lie in a
    trigger, by the screened value give or take the margin, is covered only by recomputed
    windows, so it ends up with exactly the full-precision value; every other sample stays
    below half the threshold in both precisions as long as the low-precision error is under
    the margin. That error is measured on the recomputed samples about the floor (screened at
    or above it, below half the threshold in full precision); above half the margin the whole
    instrument is recomputed (the margin would not be safe). So is it when more than
    half of the windows need recomputing (the screening would not pay).
    """
    in_samples, offsets = windows.in_samples, windows.offsets
    candidates = {channel: stacked[:, channel] >= floor for channel, floor in floors.items()}  # NaN: False
    candidate = np.logical_or.reduce(list(candidates.values()))
    touched = _touching(candidate, offsets, in_samples)
    if touched.size == 0:
        return
    if touched.size > len(offsets) // 2:
        logger.info("%s: %d of %d windows near possible picks: recomputing all in full precision",
                    trace_id, touched.size, len(offsets))
        stacked[:] = windows.stack(0, stacked.shape[0], {windows.full: range(len(offsets))})
        return
    # clusters of touched windows whose spans overlap or meet, each re-stacked over its own span
    # from every window overlapping it: the touched ones in full precision, their neighbours screened
    clusters = np.split(touched, np.flatnonzero(offsets[touched[1:]] > offsets[touched[:-1]] + in_samples) + 1)
    spans = [(int(offsets[c[0]]), int(offsets[c[-1]]) + in_samples) for c in clusters]
    overlapping = [np.flatnonzero((offsets < end) & (offsets + in_samples > first)) for first, end in spans]
    predicted = dict(windows.predictions(windows.full, touched))
    predicted.update(windows.predictions(screen, np.setdiff1d(np.concatenate(overlapping), touched)))
    worst = 0.0
    for (first, end), indices in zip(spans, overlapping):
        fresh = windows.accumulate(first, end - first, ((i, predicted[i]) for i in indices))
        for channel, is_candidate in candidates.items():
            # the error that matters is where the screen decides: values about the floor
            checked = is_candidate[first:end] & (fresh[:, channel] < floors[channel] + margin)
            if checked.any():
                worst = max(worst, float(np.abs(fresh[checked, channel] - stacked[first:end][checked, channel]).max()))
        stacked[first:end] = fresh
    logger.info("%s: %d of %d windows recomputed in full precision near possible picks (largest screening "
                "error %.2g)", trace_id, touched.size, len(offsets), worst)
    if worst > margin / 2:
        logger.warning("%s: screening error %.2g exceeds half the margin %.2g: recomputing all windows in full "
                       "precision", trace_id, worst, margin)
        stacked[:] = windows.stack(0, stacked.shape[0], {windows.full: range(len(offsets))})


class _Windows:
    """The windows of one instrument and the model steps around ``forward`` (SeisBench's own
    ``annotate_batch_pre``/``annotate_batch_post``), stacked over any span of samples."""

    def __init__(self, data, offsets, model, argdict, batch_size, stacking):
        self.data, self.offsets, self.model, self.argdict = data, offsets, model, argdict
        self.batch_size, self.stacking, self.in_samples = batch_size, stacking, model.in_samples
        self.n_classes = len(model.labels)
        self.full = _fast_copy(model, model.dtype)  # the model's own precision

    def predictions(self, runner, indices):
        """(window index, prediction samples x classes as float32) for ``indices``, in their order.

        On a CPU the batches go to as many worker threads as torch has intra-op threads, each
        running whole batches with one thread of its own: PhaseNet's layers are too small to
        split well across threads (every op would end in a barrier), whole batches side by side
        need none. The caller stacks finished batches meanwhile. Each batch is computed the same
        way whichever worker takes it, so results do not depend on the thread count.
        """
        import torch

        chunks = [indices[first : first + self.batch_size] for first in range(0, len(indices), self.batch_size)]
        workers = torch.get_num_threads() if self.model.device.type == "cpu" else 1
        if workers == 1 or len(chunks) == 1:
            for chunk in chunks:
                yield from zip(chunk, self._predict(runner, chunk))
            return
        pending: deque = deque()
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for chunk in chunks:
                pending.append((chunk, pool.submit(self._predict, runner, chunk)))
                if len(pending) > 2 * workers:  # a few batches ahead, never the whole day in memory
                    done, future = pending.popleft()
                    yield from zip(done, future.result())
            while pending:
                done, future = pending.popleft()
                yield from zip(done, future.result())

    def _predict(self, runner, chunk) -> np.ndarray:
        """Predictions (windows x samples x classes, float32) of the windows in ``chunk``."""
        import torch

        device = self.model.device
        with torch.inference_mode():  # thread-local: entered in the thread that computes
            batch = torch.from_numpy(np.stack([self.data[:, o : o + self.in_samples] for o in self.offsets[chunk]]))
            if device.type == "cuda":  # page-locked memory: the copy overlaps the GPU's work
                batch = batch.pin_memory().to(device, non_blocking=True)
            elif device.type != "cpu":
                batch = batch.to(device)
            prepared = self.model.annotate_batch_pre(batch, argdict=self.argdict)
            piggyback = None
            if isinstance(prepared, tuple):
                prepared, piggyback = prepared
            output = _to_float32(runner(prepared.to(next(runner.parameters()).dtype)))
            output = self.model.annotate_batch_post(output, piggyback=piggyback, argdict=self.argdict)
            return output.cpu().numpy()

    def stack(self, first: int, length: int, runners: dict) -> np.ndarray:
        """Stacked predictions over samples [first, first + length) of the windows ``runners`` maps
        each runner to, streamed window by window when there is one runner."""
        if len(runners) == 1:
            (runner, indices), = runners.items()
            return self.accumulate(first, length, self.predictions(runner, np.asarray(indices)))
        predicted = {}
        for runner, indices in runners.items():
            predicted.update(self.predictions(runner, np.asarray(indices)))
        return self.accumulate(first, length, ((i, predicted[i]) for i in sorted(predicted)))

    def accumulate(self, first: int, length: int, ordered) -> np.ndarray:
        """Stack (window index, prediction) pairs, given in window order, over samples
        [first, first + length); each window contributes its part inside the span."""
        shape = (length, self.n_classes)
        if self.stacking == "max":
            stacked = np.full(shape, np.nan, dtype=np.float32)
        else:  # windows covering each sample, less its NaN (blinded) values
            sums, coverage, blinded = np.zeros(shape, dtype=np.float32), np.zeros(length + 1, dtype=np.int32), None
        for index, window in ordered:
            start = int(self.offsets[index]) - first
            window = window[max(0, -start) : length - start]
            span = slice(max(0, start), max(0, start) + window.shape[0])
            if self.stacking == "max":
                np.fmax(stacked[span], window, out=stacked[span])
                continue
            if np.isnan(window.sum()):  # one pass, no allocation, for the usual window without NaN
                nan = np.isnan(window)
                blinded = np.zeros(shape, dtype=np.int32) if blinded is None else blinded
                blinded[span] += nan
                window = np.where(nan, np.float32(0), window)
            sums[span] += window
            coverage[span.start] += 1
            coverage[span.stop] -= 1
        if self.stacking == "avg":  # divide in place, counts built run by run (a cumsum over the day is slow)
            changes = np.flatnonzero(coverage[:-1])
            levels = np.concatenate(([0], np.cumsum(coverage[changes]))).astype(np.float32)
            counts = np.repeat(levels, np.diff(np.concatenate(([0], changes, [length]))))[:, None]
            if blinded is not None:
                counts = counts - blinded.astype(np.float32)
            covered = np.broadcast_to(counts > 0, shape)
            np.divide(sums, counts, out=sums, where=covered)
            sums[~covered] = np.nan
            stacked = sums
        return stacked


def resolve_screen_dtype(screen: str, model) -> torch.dtype | None:
    """The dtype of the screening pass, or None for a single pass in the model's own precision.

    Screening needs full-precision (fp32) weights to confirm with. ``auto`` is bf16 on a CPU
    with native bf16 instructions (AVX512-BF16 or AMX; there a PhaseNet window costs about
    half, see benchmarks/pick_throughput.py) and no screening elsewhere: emulated bf16 is slow,
    and on CUDA the gain has not been measured.
    """
    import torch

    if screen not in SCREENS:
        raise PickerConfigError(f"screen must be one of {SCREENS}, got {screen!r}")
    if screen == "none" or model.dtype != torch.float32:
        return None
    if screen == "auto":
        native_bf16 = model.device.type == "cpu" and torch.backends.mkldnn.is_available() and bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
        return torch.bfloat16 if native_bf16 else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[screen]


def _to_float32(value):
    import torch

    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_float32(v) for v in value)
    return value


_FAST_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fast_copy(model, dtype):
    """A copy of ``model`` in ``dtype`` rearranged for speed; its outputs differ from the
    model's by float rounding only (checked when it is built). Cached per model and dtype.

    - Every eval-mode BatchNorm fed by a convolution is folded into it (torch.fx): one
      memory-bound pass less per layer (PhaseNet fp32 -8 %, PhaseNetLight -40 % per window,
      one thread, measured); models fx cannot trace (EQTransformer) keep theirs.
    - Transposed convolutions lose their bias to an addition after them: with a bias, torch
      2.13 runs them in bf16 on a slow generic kernel (PhaseNetLight's decoder: 10-20x slower
      than bias-free, measured).
    - 1-D convolutions run as 2-D ones on channels-last tensors (see :func:`_channels_last_conv1d`).

    Rebuilt when the model's weights, dtype or device change.
    """
    key = (str(model.device), model.dtype, tuple((p.data_ptr(), p._version) for p in model.parameters()))
    copies = _FAST_COPIES.setdefault(model, {})
    if dtype not in copies or copies[dtype][0] != key:
        copies[dtype] = (key, _rearranged(model).to(device=model.device, dtype=dtype).eval())
        logger.info("%s: %s copy for the window pipeline ready", model.name, dtype)
    return copies[dtype][1]


def _channels_last_conv1d(conv):
    """``conv`` run as a 2-D convolution on channels-last tensors, where oneDNN has faster kernels
    for PhaseNet's few channels (per window, one thread: PhaseNet fp32 -18 %, bf16 -13 %;
    PhaseNetLight unchanged; transposed convolutions lose, so they stay). Same numbers up to
    float rounding."""
    import torch
    import torch.nn.functional as F

    class ChannelsLastConv1d(torch.nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.weight = torch.nn.Parameter(
                conv.weight.detach()[:, :, None, :].contiguous(memory_format=torch.channels_last), requires_grad=False
            )
            self.bias = conv.bias
            padding = conv.padding if isinstance(conv.padding, str) else (0, conv.padding[0])
            self.arguments = ((1, conv.stride[0]), padding, (1, conv.dilation[0]), conv.groups)

        def forward(self, x):
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            return F.conv2d(x, self.weight, self.bias, *self.arguments).squeeze(2)

    return ChannelsLastConv1d(conv)


def _rearranged(model):
    """fp32 copy of ``model`` with BatchNorm folded, transposed-convolution biases moved after
    them and 1-D convolutions on channels-last tensors."""
    import copy
    import inspect

    import torch
    import torch.fx
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    plain = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    plain._forward_pre_hooks.clear()  # the boundary casts of load_model: this copy is cast by its caller
    plain._forward_hooks.clear()
    probe = torch.randn(2, len(model.component_order), model.in_samples, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = _to_float32(plain(probe))

    rearranged = copy.deepcopy(plain)
    signature = list(inspect.signature(plain.forward).parameters.values())[1:]
    concrete = {p.name: p.default for p in signature if p.default is not inspect.Parameter.empty}
    try:
        traced = torch.fx.symbolic_trace(rearranged, concrete_args=concrete)
    except Exception as exc:  # fx refuses data-dependent control flow; such a model keeps its BatchNorm
        logger.info("%s: BatchNorm not folded (fx cannot trace the model: %s)", model.name, type(exc).__name__)
    else:
        modules = dict(traced.named_modules())
        calls = defaultdict(int)
        for node in traced.graph.nodes:
            if node.op == "call_module":
                calls[node.target] += 1
        for node in list(traced.graph.nodes):
            source = node.args[0] if node.args else None
            if not (node.op == "call_module" and isinstance(modules[node.target], _BatchNorm)
                    and isinstance(source, torch.fx.Node) and source.op == "call_module"
                    and isinstance(modules[source.target], _ConvNd) and len(source.users) == 1
                    and calls[source.target] == 1 and modules[node.target].running_mean is not None):
                continue
            conv = modules[source.target]
            fused = fuse_conv_bn_eval(conv, modules[node.target], transpose=isinstance(conv, _ConvTransposeNd))
            parent, _, name = source.target.rpartition(".")
            setattr(traced.get_submodule(parent), name, fused)
            node.replace_all_uses_with(source)
            traced.graph.erase_node(node)
        traced.graph.lint()
        traced.delete_all_unused_submodules()
        traced.recompile()
        rearranged = traced

    for module in rearranged.modules():
        if isinstance(module, _ConvTransposeNd) and module.bias is not None:
            bias = module.bias.detach().reshape(-1, *[1] * (module.weight.dim() - 2))
            module.bias = None
            module.register_buffer("bias_after", bias)
            module.register_forward_hook(lambda mod, args, output: output + mod.bias_after)
    for name, module in list(rearranged.named_modules()):
        if type(module) is torch.nn.Conv1d and module.padding_mode == "zeros":
            parent, _, attribute = name.rpartition(".")
            setattr(rearranged.get_submodule(parent), attribute, _channels_last_conv1d(module))

    with torch.no_grad():
        got = _to_float32(rearranged(probe))
    pairs = zip(got, expected) if isinstance(got, (tuple, list)) else [(got, expected)]
    error = max(float((a - b).abs().max()) for a, b in pairs)
    if not error < 1e-4:  # a rearrangement must not change the outputs beyond float rounding
        logger.warning("%s: the rearranged copy differs by %.2g; using a plain copy", model.name, error)
        return plain
    return rearranged


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


def annotate_stream(stream: obspy.Stream, picker_cfg: dict, *, model=None) -> obspy.Stream:
    """The probability traces a SeisBench picker triggers its picks on, one per output channel
    and instrument, named as SeisBench's ``annotate`` names them (channel ``<Model>_<label>``).

    With screening (``screen``), values below half the pick threshold minus ``screen_margin`` may
    be the low-precision ones; everything a pick depends on is computed in full precision.
    """
    settings = picker_settings(picker_cfg)
    if settings["type"] != "seisbench":
        raise PickerConfigError(f"only SeisBench pickers have probability traces, not {settings['type']!r}")
    model = model if model is not None else load_model(picker_cfg)
    arguments = {"batch_size": _batch_size(model, settings)}
    if settings["overlap"] is not None:
        arguments["overlap"] = settings["overlap"]
    if _use_classify(model, settings):
        return model.annotate(stream, **arguments)
    annotations, leftovers = obspy.Stream(), obspy.Stream()
    rate = float(model.sampling_rate)
    for trace_id, start, stacked in _window_results(stream, model, settings, arguments["batch_size"], leftovers):
        network, station, location = trace_id.split(".")
        for channel, label in enumerate(model.labels):
            trimmed_start, values = _trimmed(stacked[:, channel], start, rate)
            header = {"network": network, "station": station, "location": location, "starttime": trimmed_start,
                      "sampling_rate": rate, "channel": f"{type(model).__name__}_{label}"}
            annotations += obspy.Trace(values.copy(), header=header)
    if leftovers:
        annotations += model.annotate(leftovers, **arguments)
    return annotations


def pick_files(jobs, picker_cfg: dict, picker_name: str, model=None) -> list[pd.DataFrame]:
    """:func:`pick_file` for several (in_mseed, out_parquet, day) shards in one process.

    The model loads once, at the first non-empty shard: a new process spends seconds importing
    torch and SeisBench and loading weights (see benchmarks/pick_throughput.py), as long as the
    picking itself takes on a CPU.
    """
    settings = picker_settings(picker_cfg)
    results = []
    for in_mseed, out_parquet, day in jobs:
        if model is None and settings["type"] == "seisbench" and Path(in_mseed).stat().st_size > 0:
            model = load_model(picker_cfg)
        results.append(pick_file(in_mseed, out_parquet, picker_cfg, day, picker_name, model=model))
    return results


def pick_file(in_mseed, out_parquet, picker_cfg: dict, day: str | None, picker_name: str, model=None) -> pd.DataFrame:
    """Read a preprocessed miniSEED shard, pick it, write the picks table atomically.

    A 0-byte shard (preprocess found nothing usable; its status JSON says why) gives an empty
    picks table without loading a model.
    """
    in_mseed = Path(in_mseed)
    if in_mseed.stat().st_size == 0:
        picker_settings(picker_cfg)  # a configuration mistake still fails, data or not
        picks = _picks_table([], picker_name)
        io.write_table(picks, out_parquet)
        logger.info("%s: empty (no usable data); wrote an empty picks table to %s", in_mseed, out_parquet)
        return picks
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


def empty_picks(picker_name: str = "") -> pd.DataFrame:
    """A typed picks table without rows (a station-day without usable data)."""
    return _picks_table([], picker_name)


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
