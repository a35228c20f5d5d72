"""The shard I/O of the pick stage: every station-day of one day, preprocessed in memory and
picked by one picker (:func:`pick_day`).

One job per (picker, day) instead of one per station-day and picker: the process starts, imports
torch and SeisBench and loads the model once for the whole network-day (3.2 s per process on a
CPU, more on a GPU node, against ~3 s of picking per station-day; benchmarks/pick_throughput.py),
and a GPU keeps the model resident for all of the day's station-days. Preprocessing happens
here, in memory (:func:`quakesnake.preprocess.preprocess_station_day`): the float copy of a
station-day is ~3.3 times its Steim2-compressed raw counts and never touches the disk; the next
station-days are read and preprocessed in other threads while the model picks the current one.

"Rerun only the changed station-day" stays true inside the day job: each station-day's picks and
preprocessing status are kept in a :class:`quakesnake.cache.ContentCache` under a key of the raw
file's bytes, the preprocessing and picker settings and the weights; a rerun of the day (one raw
file replaced, or another picker's settings unchanged) copies the unchanged station-days from
there and picks only the changed one.

Outputs: the day's picks of every station (``out_picks``, what association reads), one picks table
per station-day (``out_station_picks``, the shard targets) and a table of the preprocessing status
of each station-day (``out_status``: ``ok`` or ``skipped`` and the reason).

:func:`pick_file` and :func:`pick_files` pick already preprocessed miniSEED files (tests,
benchmarks, the training and evaluation tools).
"""
from __future__ import annotations

import json
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import obspy
import pandas as pd

from quakesnake import analyst, tabular
from quakesnake.cache import ContentCache, content_key, copy_into_place, file_digest
from quakesnake.merge import merge_station_picks
from quakesnake.picking.models import resolve_device, weights_identity
from quakesnake.picking.picks import empty_picks, picks_table
from quakesnake.picking.settings import picker_settings, ungated
from quakesnake.picking.stream import above_min_snr, pick_stream, picker_model
from quakesnake.preprocess import preprocess_settings, preprocess_station_day

logger = logging.getLogger(__name__)

CACHE_SUFFIXES = (".parquet", ".json")


def _preprocess_workers(settings: dict, threads: int | None) -> int:
    if settings["type"] != "seisbench" or not threads or threads < 2:
        return 1
    return threads - 1 if resolve_device(settings["device"]).type == "cuda" else 1


def raw_station_days(status_path, station_picks_paths) -> list[Path]:
    """The raw miniSEED of each station-day, in the order of its picks outputs: beside the day's
    download status table, named as the picks (``NET.STA``)."""
    folder = Path(status_path).parent
    return [folder / (Path(path).name.removesuffix(".parquet") + ".mseed") for path in station_picks_paths]


def pick_day(raw_paths, day: str, picker_cfg: dict, picker_name: str, *, out_picks, out_station_picks, out_status,
             cache_dir, preprocess_options: dict | None = None, margin_s: float = 0.0,
             threads: int | None = None, preprocess_workers: int | None = None) -> pd.DataFrame:
    """Preprocess and pick every raw station-day of ``day``; write the outputs; return the day's picks.

    ``raw_paths`` and ``out_station_picks`` are parallel lists (one raw miniSEED, 0 bytes for a
    station-day without data, and one picks table per station). ``cache_dir`` holds the
    content-keyed station-day results of this picker and day. ``threads`` is the torch thread
    count of a SeisBench model on the CPU (the job's cores). ``preprocess_workers`` threads read
    and preprocess the station-days ahead of the picker: by default one, and on a GPU all the
    job's cores but one (there the model waits for preprocessing, ~1 s of CPU per station-day,
    not the other way round).
    """
    settings = picker_settings(picker_cfg)
    # The station-days' picks (and their cache) hold every pick with its SNR; the picker's SNR gate
    # is applied to the day's picks, so changing it picks nothing again.
    picking = ungated(settings)
    options = preprocess_settings(preprocess_options or {})
    raw_paths, out_station_picks = list(map(Path, raw_paths)), list(map(Path, out_station_picks))
    if len(raw_paths) != len(out_station_picks):
        raise ValueError(f"{len(raw_paths)} raw station-days but {len(out_station_picks)} picks outputs")
    identity = [day, margin_s, {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
                picking, weights_identity(settings), analyst.CONVENTION]
    cache = ContentCache(cache_dir)
    model = None

    def prepare(path: Path):
        """Key, cached entry or (preprocessed stream, status record) of one station-day."""
        network, station = tabular.shard_code(path)
        key = content_key("pick", file_digest(path), identity)
        cached = cache.get(f"{network}.{station}", key, CACHE_SUFFIXES)
        if cached:
            return key, cached, None, None
        started = time.perf_counter()
        stream, record = preprocess_station_day(path, day=day, margin_s=margin_s, station_id=f"{network}.{station}",
                                                **preprocess_options or {})
        return key, None, stream, {**record, "preprocess_s": time.perf_counter() - started}

    tables, rows = [], []
    counts = {"cached": 0, "picked": 0, "skipped": 0}
    seconds = {"preprocess": 0.0, "pick": 0.0}
    if preprocess_workers is None:
        preprocess_workers = _preprocess_workers(settings, threads)
    # station-days ahead: the next ones are read and preprocessed while this one is picked
    with ThreadPoolExecutor(max_workers=preprocess_workers, thread_name_prefix="preprocess") as pool:
        pending = deque(pool.submit(prepare, path) for path in raw_paths[:preprocess_workers])
        for index, (raw, out) in enumerate(zip(raw_paths, out_station_picks)):
            key, cached, stream, record = pending.popleft().result()
            if index + preprocess_workers < len(raw_paths):
                pending.append(pool.submit(prepare, raw_paths[index + preprocess_workers]))
            network, station = tabular.shard_code(raw)
            if cached:
                copy_into_place(cached[".parquet"], out)
                record = json.loads(cached[".json"].read_text())
                picks = tabular.read_table(out, tabular.PICK_COLUMNS)
                counts["cached"] += 1
            else:
                seconds["preprocess"] += record.pop("preprocess_s")
                if stream is None:
                    picks = empty_picks(picker_name)
                    counts["skipped"] += 1
                else:
                    if model is None and settings["type"] != "stalta":
                        model = picker_model(settings)
                        models = model if isinstance(model, list) else [model]  # a consensus' members
                        if threads and any(m is not None and m.device.type == "cpu" for m in models):
                            import torch

                            torch.set_num_threads(int(threads))
                    started = time.perf_counter()
                    picks = pick_stream(stream, picking, day=day, model=model, picker_name=picker_name)
                    seconds["pick"] += time.perf_counter() - started
                    counts["picked"] += 1
                del stream
                tabular.write_table(picks, out)
                status_file = cache.path(f"{network}.{station}", key, ".json.new")
                status_file.parent.mkdir(parents=True, exist_ok=True)
                status_file.write_text(json.dumps(record, sort_keys=True, default=str))
                cache.put(f"{network}.{station}", key, {".parquet": out, ".json": status_file})
                status_file.unlink(missing_ok=True)
                logger.info("%s.%s %s: %d P and %d S picks (%s)", network, station, day, (picks["phase"] == "P").sum(),
                            (picks["phase"] == "S").sum(), picker_name)
            tables.append(picks)
            rows.append(tabular.shard_status_row(day, network, station, record))

    day_picks = above_min_snr(merge_station_picks(tables) if tables else empty_picks(picker_name), settings)
    tabular.write_table(day_picks, out_picks)
    tabular.write_table(pd.DataFrame(rows, columns=tabular.SHARD_STATUS_TABLE_COLUMNS), out_status)
    logger.info(
        "%s %s: %d station-days, %d picked, %d without usable data, %d unchanged (from the cache %s); "
        "preprocessing %.1f s, picking %.1f s; %d picks", picker_name, day, len(raw_paths), counts["picked"],
        counts["skipped"], counts["cached"], cache.root, seconds["preprocess"], seconds["pick"], len(day_picks))
    return day_picks




def pick_files(jobs, picker_cfg: dict, picker_name: str, model=None) -> list[pd.DataFrame]:
    """:func:`pick_file` for several (in_mseed, out_parquet, day) shards in one process.

    The model loads once, at the first non-empty shard: a new process spends seconds importing
    torch and SeisBench and loading weights (see benchmarks/pick_throughput.py), as long as the
    picking itself takes on a CPU.
    """
    settings = picker_settings(picker_cfg)
    results = []
    for in_mseed, out_parquet, day in jobs:
        if model is None and settings["type"] != "stalta" and Path(in_mseed).stat().st_size > 0:
            model = picker_model(picker_cfg)
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
        picks = picks_table([], picker_name)
        tabular.write_table(picks, out_parquet)
        logger.info("%s: empty (no usable data); wrote an empty picks table to %s", in_mseed, out_parquet)
        return picks
    try:
        stream = obspy.read(str(in_mseed), format="MSEED")
    except Exception as exc:  # ObsPy raises many types for unreadable files; the user needs file and reason
        raise ValueError(f"{in_mseed}: cannot read miniSEED ({type(exc).__name__}: {exc})") from exc
    picks = pick_stream(stream, picker_cfg, day=day, model=model, picker_name=picker_name)
    tabular.write_table(picks, out_parquet)
    logger.info(
        "%s: %d P and %d S picks (%s) -> %s", in_mseed.name, (picks["phase"] == "P").sum(),
        (picks["phase"] == "S").sum(), picker_name or picker_cfg.get("type"), out_parquet,
    )
    return picks
