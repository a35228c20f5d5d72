"""How much a window picker's picks depend on where its windows happen to start, and what the dense
pass near possible picks (``dense_overlap``, quakesnake.picking.dense) does about it; print the tables.

    python benchmarks/window_positions.py [--update-readme]

Real continuous data: the Colombian hour of ../shared (13 CM stations, 2017-10-15 06:00-07:00
UTC), preprocessed as the pick stage preprocesses, picked by the shipped default PhaseNet (its own
thresholds) with

- one pass at the model's overlap (SeisBench's default, 1,500 of PhaseNet's 3,001 samples: two
  window positions per sample), as every picker ran before the dense pass;
- the default: that pass, then the dense pass at overlap 0.9 near possible picks;
- every window at overlap 0.9 (2,700 samples: ten positions), what the dense pass computes near
  picks, everywhere;
- every window at 2,950 samples (60 positions): the limit more overlap tends to.

Columns: picks; picks that come and go with the window layout (the same hour picked from three
starts, 0, 4.31 and 10.93 s after the hour: per pair of starts, the share of one start's picks
with no pick of the same station and phase within 0.1 s in the other, averaged); the picks with
no such pick among those of every window at 0.9 (what the dense pass stands in for) and of the
limit, and theirs with none among the row's; CPU seconds of picking per station-hour.

Labelled records: the 100 real records of ../shared (evaluation only) put every P at sample 3,000,
a window start of the model's own layout. Scored as given and starting 431, 977 and 1,289 samples
later (the layouts of a recording that starts elsewhere; labels keep their times), without and
with the dense pass: the spread is what the window layout alone does to a labelled-record score.
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import obspy
import pandas as pd
from common import SHARED, machine, markdown_table, shipped_phasenet_weights, update_readme

from quakesnake.picker_evaluation import evaluate_picker, read_labelled_records
from quakesnake.picking.stream import pick_stream, picker_model
from quakesnake.preprocess import preprocess_stream

HOUR = SHARED / "data" / "real" / "colombia-vmm-2017-10-15" / "mseed"
LABELLED = SHARED / "data" / "labelled-waveforms"
STARTS_S = (0.0, 4.31, 10.93)
RECORD_SHIFTS = (0, 431, 977, 1289)  # samples
TOLERANCE_S = 0.1
SHIPPED = {"type": "seisbench", "model": "PhaseNet", "weights": shipped_phasenet_weights(), "device": "cpu"}
SETTINGS = {
    "one pass at the model's overlap (1,500 samples)": {"dense_overlap": None},
    "default: dense pass near possible picks (0.9)": {},
    "every window at 0.9 (2,700 samples)": {"overlap": 2700, "dense_overlap": None},
}
EVERY_DENSE = "every window at 0.9 (2,700 samples)"
LIMIT = ("every window at 2,950 samples (the limit)", {"overlap": 2950, "dense_overlap": None})


def hour_streams() -> dict[str, obspy.Stream]:
    """The hour per station, preprocessed as the pick stage does."""
    raw = obspy.Stream()
    for path in sorted(HOUR.glob("*.mseed")):
        raw += obspy.read(str(path))
    return {station: preprocess_stream(raw.select(station=station).copy())
            for station in sorted({trace.stats.station for trace in raw})}


def pick_hour(streams: dict, picker_cfg: dict, model, start_s: float) -> tuple[pd.DataFrame, float]:
    """The hour's picks from ``start_s`` after its start on, and the CPU seconds picking took."""
    cpu = time.process_time()
    tables = []
    for stream in streams.values():
        later = stream.slice(stream[0].stats.starttime + start_s) if start_s else stream
        tables.append(pick_stream(later, picker_cfg, model=model))
    return pd.concat(tables, ignore_index=True), time.process_time() - cpu


def unmatched(picks: pd.DataFrame, other: pd.DataFrame, after_ns: int) -> int:
    """Picks (at or after ``after_ns``) with no pick of the same station and phase in ``other``
    within :data:`TOLERANCE_S`."""
    count = 0
    for (station, phase), group in picks[picks["time"].astype("int64") >= after_ns].groupby(["station", "phase"]):
        times = other.loc[(other["station"] == station) & (other["phase"] == phase), "time"].astype("int64").to_numpy()
        for t in group["time"].astype("int64").to_numpy():
            count += times.size == 0 or np.abs(times - t).min() > TOLERANCE_S * 1e9
    return count


def hour_rows(streams: dict, model) -> list[list]:
    first_ns = min(stream[0].stats.starttime.ns for stream in streams.values())
    latest_ns = first_ns + int(max(STARTS_S) * 1e9)  # compare starts where all of them have data
    runs = {name: [pick_hour(streams, {**SHIPPED, **settings}, model, start) for start in STARTS_S]
            for name, settings in SETTINGS.items()}
    runs[LIMIT[0]] = [pick_hour(streams, {**SHIPPED, **LIMIT[1]}, model, 0.0)]
    every_dense, limit = runs[EVERY_DENSE][0][0], runs[LIMIT[0]][0][0]
    rows = []
    for name, starts in runs.items():
        picks, cpu = starts[0]
        changing = [unmatched(a, b, latest_ns) / max(int((a["time"].astype("int64") >= latest_ns).sum()), 1)
                    for i, (a, _) in enumerate(starts) for j, (b, _) in enumerate(starts) if i != j]
        rows.append([name, len(picks), int((picks["phase"] == "P").sum()), int((picks["phase"] == "S").sum()),
                     round(float(np.mean(changing)), 3) if changing else "–",
                     f"{unmatched(picks, every_dense, first_ns)} / {unmatched(every_dense, picks, first_ns)}",
                     f"{unmatched(picks, limit, first_ns)} / {unmatched(limit, picks, first_ns)}",
                     round(cpu / len(streams), 2)])
    return rows


def shifted(records, samples: int):
    """The records starting ``samples`` later (labels keep their times)."""
    if samples == 0:
        return records
    out = []
    for record in records:
        record = copy.deepcopy(record)
        for trace in record.stream:
            trace.data = trace.data[samples:]
            trace.stats.starttime += samples / trace.stats.sampling_rate
        out.append(record)
    return out


def labelled_rows(model) -> list[list]:
    records = read_labelled_records(LABELLED / "npz", LABELLED / "labels.csv")
    rows = []
    for name in list(SETTINGS)[:2]:
        scores = []
        for samples in RECORD_SHIFTS:
            metrics = evaluate_picker(shifted(records, samples), {**SHIPPED, **SETTINGS[name]}, model=model,
                                      tolerances=(0.5,))
            scores.append({f"{phase} {kind}": metrics[phase]["0.5s"][kind]
                           for phase in "PS" for kind in ("recall", "precision")})
        frame = pd.DataFrame(scores)
        rows.append([name, *[f"{frame[c].iloc[0]:.3g} ({frame[c].min():.3g}–{frame[c].max():.3g})" for c in frame]])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-readme", action="store_true", help="write the tables into README.md")
    args = parser.parse_args()
    if not HOUR.is_dir():
        raise SystemExit(f"needs the Colombian hour in {HOUR}")
    started = time.perf_counter()
    model = picker_model(SHIPPED)
    streams = hour_streams()
    hour = hour_rows(streams, model)
    labelled = labelled_rows(model) if (LABELLED / "labels.csv").is_file() else []
    wall = time.perf_counter() - started
    text = (f"Picks and window layout on real data: the Colombian hour (13 CM stations, 2017-10-15 06-07 UTC), "
            f"PhaseNet {SHIPPED['weights']} at its own thresholds, measured by `python benchmarks/window_positions.py` "
            f"on {machine()} ({wall:.0f} s). Changing with the layout: the hour picked from {', '.join(f'{s:g}' for s in STARTS_S)} s "
            f"after its start, share of picks without a pick of the same station and phase within {TOLERANCE_S:g} s "
            f"in another start's (mean over pairs).\n\n"
            + markdown_table(["windows", "picks", "P", "S", "picks changing with the layout",
                              "picks not among every window at 0.9's / theirs missing",
                              "picks not among the limit's / its missing", "CPU s / station-hour"], hour) + "\n")
    if labelled:
        text += (f"\nThe {len(read_labelled_records(LABELLED / 'npz', LABELLED / 'labels.csv'))} labelled records as given "
                 f"(P at sample 3,000 of each: a window start of the model's layout) and, in brackets, the range over them "
                 f"and the records starting {', '.join(str(s) for s in RECORD_SHIFTS[1:])} samples later (within 0.5 s):\n\n"
                 + markdown_table(["windows", "P recall", "P precision", "S recall", "S precision"], labelled) + "\n")
    print(text)
    if args.update_readme:
        update_readme("window-positions", text)


if __name__ == "__main__":
    main()
