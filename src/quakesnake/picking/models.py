"""SeisBench models: weights by path, shipped name or pretrained name; device and precision.

``weights`` resolve in the order :func:`load_model` documents; :func:`weights_identity` names the
same files without loading them (the pick stage keys its cache on it), both through
:func:`_resolve_weights`, so the two can never disagree on which files a picker reads.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from quakesnake.picking import seisbench_adapter
from quakesnake.picking.settings import PRECISIONS, PickerConfigError, picker_settings

if TYPE_CHECKING:  # torch/seisbench take seconds to import; the STA/LTA picker never needs them
    import seisbench.models
    import torch

logger = logging.getLogger(__name__)

SHIPPED_WEIGHTS_DIR = Path(__file__).parent.parent / "weights"  # src/quakesnake/weights


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
    model_class = model_class_named(settings["model"])
    model = load_weights(model_class, str(settings["weights"]), settings["version"])

    device = resolve_device(settings["device"])
    dtype = resolve_dtype(settings["precision"], device)
    model.to(device=device, dtype=dtype)
    if dtype != torch.float32:
        _cast_at_model_boundary(model)
    model.eval()
    logger.info("loaded %s weights %r on %s (%s)", model.name, settings["weights"], device, dtype)
    return model


def phase_thresholds(model, settings: dict) -> dict[str, float]:
    """The P and S trigger thresholds of a SeisBench picker: the settings' ``p_threshold`` /
    ``s_threshold``, where null the weights' own (``default_args``, as SeisBench's classify takes
    them), else SeisBench's generic default (0.3)."""
    generic = float(seisbench_adapter.annotate_argument(model, {}, "*_threshold"))
    return {phase: float(settings[f"{phase.lower()}_threshold"] if settings[f"{phase.lower()}_threshold"] is not None
                         else model.default_args.get(f"{phase}_threshold", generic))
            for phase in ("P", "S")}


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


def model_class_named(name: str) -> type:
    """The ``seisbench.models`` WaveformModel class called ``name``; an unknown name lists the known ones."""
    classes = seisbench_adapter.waveform_model_classes()
    if name not in classes:
        raise PickerConfigError(f"unknown SeisBench model {name!r} (available: {', '.join(sorted(classes))})")
    return classes[name]


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a picker's weights come from (see :func:`load_model` for the order).

    ``kind``: ``saved`` (a ``model.save`` pair at ``base``), ``shipped`` (this project's, at
    ``base``), ``state_dict`` (a lone ``.pt``) or ``pretrained`` (a name for SeisBench's cache).
    ``files``: what is read from disk, empty for a pretrained name.
    """

    kind: str
    base: Path | None
    files: tuple[Path, ...]


def resolve_weights(model_name: str, weights: str, version: str | None) -> ResolvedWeights:
    """Resolve ``weights`` of the SeisBench class ``model_name``; a path that does not exist raises."""
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
        return ResolvedWeights("saved", base, (json_file, pt_file))
    if pt_file.is_file():
        return ResolvedWeights("state_dict", base, (pt_file,))
    shipped = SHIPPED_WEIGHTS_DIR / model_name.lower() / weights
    shipped_files = (Path(f"{shipped}.json{suffix}"), Path(f"{shipped}.pt{suffix}"))
    if all(f.is_file() for f in shipped_files):
        return ResolvedWeights("shipped", shipped, shipped_files)
    if looks_like_path:
        raise PickerConfigError(
            f"weights {weights!r} look like a local path, but neither {pt_file} (+ {json_file.name}) "
            f"nor a directory holding such a pair exists"
        )
    return ResolvedWeights("pretrained", None, ())


def load_weights(model_class: type, weights: str, version: str | None):
    """The model of ``model_class`` with ``weights`` (see :func:`load_model`)."""
    version = None if version is None else str(version)
    resolved = resolve_weights(model_class.__name__, weights, version)
    if resolved.kind in ("saved", "shipped"):
        owner = "the project's" if resolved.kind == "shipped" else "local"
        logger.info("loading %s %s weights from %s", owner, model_class.__name__, resolved.files[1])
        return model_class.load(resolved.base, version_str=version, map_location="cpu")
    if resolved.kind == "state_dict":
        logger.warning("%s has no .json beside it: building %s with default arguments", resolved.files[0],
                       model_class.__name__)
        import torch

        model = model_class()
        model.load_state_dict(torch.load(resolved.files[0], map_location="cpu", weights_only=True))
        return model
    return _from_pretrained(model_class, weights, version)


def weights_identity(picker_cfg: dict) -> list | None:
    """What identifies a picker's weights without loading them: the digests of the files
    :func:`load_weights` reads, else the pretrained name and version (SeisBench's cache never
    changes the files of a version). None for STA/LTA; a consensus picker's: its members'.

    The pick stage keys its station-day cache on it, so retrained weights saved over the same
    path give new picks.
    """
    from quakesnake.cache import file_digest

    settings = picker_settings(picker_cfg)
    if settings["type"] == "consensus":
        return [weights_identity(member) for member in settings["members"]]
    if settings["type"] != "seisbench":
        return None
    weights, version = str(settings["weights"]), settings["version"]
    resolved = resolve_weights(settings["model"], weights, version)
    if resolved.files:
        return [settings["model"], [(f.name, file_digest(f)) for f in resolved.files]]
    return [settings["model"], "pretrained", weights, version]


def _from_pretrained(model_class: type, name: str, version: str | None):
    cache_dir = seisbench_adapter.model_cache_dir(model_class)
    try:
        return model_class.from_pretrained(name, version_str=version or "latest")
    except Exception as exc:  # SeisBench raises ValueError, requests and OS errors; the user needs all of it
        cached = sorted(p.name for p in cache_dir.glob(f"{name}.*")) if cache_dir.is_dir() else []
        raise PickerConfigError(
            f"cannot load {model_class.__name__} weights {name!r} (version {version or 'latest'}). Tried: "
            f"local path {name!r} (not found); SeisBench cache {cache_dir} (holds: {', '.join(cached) or 'nothing'}; "
            f"set SEISBENCH_CACHE_ROOT to a cache with the files to work offline); "
            f"download from {seisbench_adapter.remote_model_root()} ({type(exc).__name__}: {exc})"
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
