"""Every SeisBench internal this project relies on, in one place.

The window pipeline (:mod:`quakesnake.picking.windows`) reproduces ``WaveformModel.annotate``
step for step, so it needs what SeisBench keeps private: how a model groups traces
(``_grouping``), how it resolves its window overlap (``_get_overlap``) and its other annotate
arguments (``_argdict_get_with_default``), and which ``classify_aggregate`` a model inherits.
SeisBench may rename any of them in a minor release; :func:`check_compatible` fails loudly,
naming what is missing, before a picker silently diverges from SeisBench's own picks.
pyproject.toml pins the range the tests ran on (:data:`TESTED_RANGE`).
"""
from __future__ import annotations

from pathlib import Path

from quakesnake.picking.settings import PickerConfigError

TESTED_RANGE = ">=0.12.6,<0.13"  # the same as pyproject.toml's pin

# (owner, attribute) pairs looked up on seisbench.models classes
_REQUIRED = (
    ("WaveformModel", "_get_overlap"),
    ("WaveformModel", "_argdict_get_with_default"),
    ("WaveformModel", "annotate_batch_pre"),
    ("WaveformModel", "annotate_batch_post"),
    ("WaveformModel", "classify"),
    ("WaveformModel", "annotate"),
    ("PhaseNet", "classify_aggregate"),
    ("EQTransformer", "classify_aggregate"),
)


class SeisBenchIncompatible(PickerConfigError):
    """The installed SeisBench lacks an internal the window pipeline reproduces."""


def check_compatible(models_module=None) -> None:
    """Raise :class:`SeisBenchIncompatible` naming every missing internal (``models_module``:
    ``seisbench.models`` by default; tests pass a stand-in)."""
    if models_module is None:
        import seisbench.models as models_module
    missing = [f"{owner}.{name}" for owner, name in _REQUIRED
               if not hasattr(getattr(models_module, owner, None), name)]
    if missing:
        import seisbench

        raise SeisBenchIncompatible(
            f"SeisBench {getattr(seisbench, '__version__', '?')} lacks {', '.join(missing)}, which quakesnake's window "
            f"pipeline reproduces; install seisbench{TESTED_RANGE} (the tested range) or set engine: seisbench")


def waveform_model_classes() -> dict[str, type]:
    """Every ``seisbench.models`` WaveformModel subclass by class name."""
    import seisbench.models as sbm

    return {name: obj for name, obj in vars(sbm).items()
            if isinstance(obj, type) and issubclass(obj, sbm.WaveformModel) and obj is not sbm.WaveformModel}


def grouping(model) -> str:
    """How the model groups traces for annotation: ``instrument``, ``channel``, ..."""
    return model._grouping.grouping


def window_overlap(model, argdict: dict) -> int:
    """The overlap (samples) ``annotate`` uses for ``argdict``, as SeisBench resolves it."""
    return model._get_overlap(model.in_samples, argdict)


def annotate_argument(model, argdict: dict, key: str):
    """An annotate argument (e.g. ``stacking``) from ``argdict`` or the model's default."""
    return model._argdict_get_with_default(argdict, key)


def has_default_classify_aggregate(model) -> bool:
    """True when the model turns annotations into picks as PhaseNet or EQTransformer do."""
    import seisbench.models as sbm

    return type(model).classify_aggregate in (sbm.PhaseNet.classify_aggregate, sbm.EQTransformer.classify_aggregate)


def phase_labels(model) -> list[str]:
    """The output channels ``classify`` turns into picks, as PhaseNet's and EQTransformer's
    ``classify_aggregate`` do."""
    import seisbench.models as sbm

    if isinstance(model, sbm.EQTransformer):
        return list(model.phases)
    return [label for label in model.labels if label != "N"]


def model_cache_dir(model_class: type) -> Path:
    """Where SeisBench's cache keeps this class's pretrained weights."""
    import seisbench

    return Path(seisbench.cache_model_root, model_class.__name__.lower())


def remote_model_root() -> str:
    import seisbench

    return str(seisbench.remote_model_root)
