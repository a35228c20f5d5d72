"""Phase picking on station-day shards: SeisBench models or an STA/LTA + AIC baseline.

A picker configuration is a dict from the workflow config; ``type`` selects the picker:

``{"type": "seisbench", ...}`` — any ``seisbench.models`` WaveformModel (keys and defaults in
:data:`~quakesnake.picking.settings.SEISBENCH_DEFAULTS`); ``weights`` is a local path, a name this
project ships or a SeisBench pretrained name, see :func:`load_model`. Array-output models
(PhaseNet, EQTransformer, …) run through the project's window pipeline (``engine: quakesnake``):
SeisBench's ``classify`` computed with less overhead, batches spread over the CPU's threads, and
on CPUs with native bf16 a bf16 screen whose possible picks are recomputed in fp32 (``screen``),
then, near possible picks, probabilities averaged over ten window positions instead of two
(``dense_overlap``, :mod:`.dense`); benchmarks/pick_throughput.py measures it against ``classify``.
Thresholds left null are the weights' own (:func:`.models.phase_thresholds`).

``{"type": "stalta", ...}`` — the classic baseline (keys and defaults in
:data:`~quakesnake.picking.settings.STALTA_DEFAULTS`): recursive STA/LTA on the band-passed
vertical triggers P, each trigger is refined with Maeda's AIC; S is the strongest STA/LTA peak
of the horizontal energy in a window after each P, refined with AIC on the horizontals.
``probability`` is a quality ``1 - 0.5 * threshold / peak`` of the STA/LTA peak: 0.5 at the
trigger threshold, towards 1 for strong arrivals — the same range as ML pick probabilities
above their usual thresholds, so downstream filters treat both alike.

``{"type": "consensus", "members": [...], ...}`` — the picks on which ``min_agree`` of the member
pickers agree within a tolerance per phase (:mod:`.consensus`).

Picks are returned as a table with :data:`quakesnake.tabular.PICK_COLUMNS`; with ``day`` given, only
picks inside [day, day + 1 d) are kept (shards carry a margin of the neighbouring days so no
arrival is lost at midnight). Every pick carries its ``snr`` as an analyst would measure it
(:mod:`quakesnake.analyst`), and any picker type may drop picks below ``p_min_snr`` / ``s_min_snr``.

Modules: :mod:`.settings` (keys, defaults, validation), :mod:`.models` (SeisBench models and
weights), :mod:`.seisbench_adapter` (the SeisBench internals used, checked), :mod:`.windows`
(the window pipeline), :mod:`.screen` and :mod:`.fast_model` (its speed-ups), :mod:`.dense` (its dense pass), :mod:`.stalta`
(the baseline), :mod:`.picks` (the :class:`Pick` type and the picks table), :mod:`.stream`
(picking a stream) and :mod:`.shards` (the pick stage's files: a day of station-days per job).
"""
import os

# OpenMP threads that wait for work by spinning (libgomp's default) wreck torch on a shared CPU:
# while the calling thread stacks predictions, its idle helper spins on the CPU time the
# other processes and the caller need. PhaseNet on 6 h of data, 2 threads, machine at load 7:
# 10-23 s spinning against 1.5 s sleeping (benchmarks/pick_throughput.py). libgomp reads this
# when torch loads; this package never imports torch at import time, and a user's choice wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Where each public name lives. Loaded on first use (PEP 562), not here: the workflow's rule files
# read picker settings (quakesnake.picking.settings) on every Snakemake call, dry runs included,
# and should not pay for the window pipeline, SciPy and ObsPy that the pick jobs import.
_PUBLIC = {
    "SHIPPED_WEIGHTS_DIR": "models", "load_model": "models", "resolve_device": "models",
    "resolve_dtype": "models", "weights_identity": "models",
    "Pick": "picks", "empty_picks": "picks", "picks_table": "picks",
    "PickerConfigError": "settings", "default_batch_size": "settings", "picker_settings": "settings",
    "pick_day": "shards", "pick_file": "shards", "pick_files": "shards", "raw_station_days": "shards",
    "annotate_stream": "stream", "pick_stream": "stream", "picker_model": "stream",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    import importlib

    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
