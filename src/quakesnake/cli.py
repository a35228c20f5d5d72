"""The ``quakesnake`` command line: one subcommand per task, each a function taking parsed arguments.

Add a subcommand by writing ``_add_<name>(subparsers)`` that registers its arguments and sets
``handler``, and listing it in ``_SUBCOMMANDS``. Handlers return the exit code; expected
failures (unreadable tables, bad values, a bad picker or associator configuration: any
:class:`~quakesnake.errors.QuakesnakeError`) end with a one-line message and exit code 2, never
a traceback.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import pandas as pd

from quakesnake.errors import QuakesnakeError
from quakesnake.tabular import read_reference, read_stations, read_table

logger = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2


class UsageError(QuakesnakeError, ValueError):
    """Input the user has to fix; the message names the file or option and the reason."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except QuakesnakeError as exc:
        print(f"quakesnake {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quakesnake", description="Seismic waveforms to an earthquake catalog, and its evaluation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


# --------------------------------------------------------------------------- evaluate

def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a catalog against a reference catalog",
        description="Score predicted events and picks against a reference directory (events.csv, picks.csv, "
                    "stations.csv). Predictions are parquet or CSV, in the package's contracts or the reference layout.",
    )
    parser.add_argument("--reference", required=True, type=Path, metavar="DIR", help="reference catalog directory")
    parser.add_argument("--events", required=True, type=Path, metavar="FILE", help="predicted events (time, latitude, longitude, depth_km[, magnitude])")
    parser.add_argument("--picks", required=True, type=Path, metavar="FILE", help="predicted picks (station, phase, time)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="metrics JSON to write")
    parser.add_argument("--start", help="window start, UTC (default: first day of the predicted picks, else of the reference)")
    parser.add_argument("--end", help="window end, exclusive (default: the day after the last predicted pick, else reference)")
    parser.add_argument("--stations", type=Path, metavar="FILE", help="stations that were processed; reference picks elsewhere are not counted")
    parser.add_argument("--pick-tolerance", type=float, default=0.5, metavar="S", help="pick time tolerance, s (default 0.5)")
    parser.add_argument("--event-time-tolerance", type=float, default=2.0, metavar="S", help="origin time tolerance, s (default 2)")
    parser.add_argument("--event-distance-tolerance", type=float, default=8.0, metavar="KM", help="epicentral tolerance, km (default 8)")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="also write event_map.png and pick_residuals.png here")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from quakesnake.evaluation import score_catalog, write_metrics
    from quakesnake.report_figures import plot_event_map, plot_pick_residuals

    for name in ("pick_tolerance", "event_time_tolerance", "event_distance_tolerance"):
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not args.reference.is_dir():
        raise UsageError(f"{args.reference}: reference directory not found")
    ref_events, ref_picks, ref_stations = read_reference(args.reference)
    pred_events = read_table(args.events, ["time", "latitude", "longitude", "depth_km"])
    _require_numeric(pred_events, ["latitude", "longitude", "depth_km"], args.events)
    pred_picks = read_table(args.picks, ["station", "phase", "time"])
    processed = read_stations(args.stations)["station"] if args.stations else None
    start, end = _window(args, pred_picks, ref_events, ref_picks)

    score = score_catalog(
        pred_events, pred_picks, ref_events, ref_picks, ref_stations, start=start, end=end,
        pick_tolerance_s=args.pick_tolerance, event_time_tolerance_s=args.event_time_tolerance,
        event_distance_tolerance_km=args.event_distance_tolerance, processed_stations=processed,
    )
    write_metrics(score.metrics, args.out)
    if args.plots:
        plot_event_map(score.detections, score.reference, ref_stations, args.plots / "event_map.png")
        plot_pick_residuals(score.pick_matches, args.plots / "pick_residuals.png")
    print(format_metrics(score.metrics))
    return 0


def _require_numeric(frame: pd.DataFrame, columns: list[str], path) -> None:
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            raise UsageError(f"{path}: column {column!r} holds non-numbers (first: {frame.loc[bad, column].iloc[0]!r})")
        frame[column] = values


def _window(args, pred_picks: pd.DataFrame, ref_events: pd.DataFrame, ref_picks: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Explicit --start/--end, else whole UTC days spanning the predicted picks, else the reference."""
    spanned = pred_picks["time"] if len(pred_picks) else pd.concat([ref_events["time"], ref_picks["time"]])
    defaults = (spanned.min().floor("D"), spanned.max().floor("D") + pd.Timedelta(days=1)) if len(spanned) else (None, None)
    window = []
    for option, given, default in (("--start", args.start, defaults[0]), ("--end", args.end, defaults[1])):
        if given is None:
            if default is None:
                raise UsageError(f"{option} is needed: neither predictions nor reference hold any time")
            window.append(default)
            continue
        try:
            stamp = pd.Timestamp(given)
        except ValueError as exc:
            raise UsageError(f"{option} {given!r} is not a time ({exc})") from exc
        window.append(stamp.tz_convert(None) if stamp.tzinfo else stamp)
    if window[0] >= window[1]:
        raise UsageError(f"empty window: start {window[0]} is not before end {window[1]}")
    return window[0], window[1]


def _number(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_metrics(metrics: dict) -> str:
    """A small fixed-width table of the headline numbers."""
    events = metrics["events"]
    lines = [
        f"window {metrics['window']['start']} .. {metrics['window']['end']}",
        f"{'':8}{'recall':>8}{'precision':>11}{'n_ref':>8}{'n_pred':>8}{'tp':>7}",
    ]
    for label, row in (("P picks", metrics["picks"]["P"]), ("S picks", metrics["picks"]["S"]), ("events", events)):
        lines.append(f"{label:8}{_number(row['recall']):>8}{_number(row['precision']):>11}{row['n_ref']:>8}{row['n_pred']:>8}{row['tp']:>7}")
    lines.append(
        f"origin time MAE {_number(events['origin_time_mae_s'], 2)} s, epicentre MAE {_number(events['epicentral_mae_km'], 2)} km, "
        f"depth MAE {_number(events['depth_mae_km'], 2)} km (bias {_number(events['depth_bias_km'], 2)})"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- replay

def _add_replay(subparsers) -> None:
    parser = subparsers.add_parser(
        "replay", help="associate a reference catalog's own picks and score the events against it",
        description="Feed the picks of a catalog directory (events.csv, picks.csv, stations.csv) day by day to an "
                    "associator, as the workflow does, and score the events against the catalog's events. Picks on "
                    "stations without coordinates are dropped and counted.",
    )
    parser.add_argument("--catalog-dir", required=True, type=Path, metavar="DIR", help="catalog directory in the shared layout")
    parser.add_argument("--associator", required=True, metavar="NAME",
                        help="an entry of --config's 'associators:', or without --config an associator type with its defaults (pyocto, gamma)")
    parser.add_argument("--config", type=Path, metavar="YAML", help="YAML with an 'associators:' mapping, e.g. config/ogs-associators.yaml")
    parser.add_argument("--velocity-model", type=Path, metavar="CSV",
                        help="1D model (depth_km, vp_km_s, vs_km_s) for PyOcto 1d and --relocate (default: DIR/velocity_1d.csv when present)")
    parser.add_argument("--false-pick-rate", type=float, default=0.0, metavar="R",
                        help="add R x n_picks false picks, each within 30 s of a real pick on a random station and phase (default 0)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the false picks (default 0)")
    parser.add_argument("--relocate", action="store_true", help="relocate the events in the 1D model; metrics before and after")
    parser.add_argument("--sea-level-stations", action="store_true",
                        help="relocate as if every station were at sea level, as Hypo71-style bulletins (OGS) locate")
    parser.add_argument("--first-day", metavar="YYYY-MM-DD", help="first UTC day to replay (default: the first event's)")
    parser.add_argument("--last-day", metavar="YYYY-MM-DD", help="last UTC day to replay, inclusive (default: the last event's)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="metrics JSON to write")
    parser.add_argument("--events-out", type=Path, metavar="FILE", help="also write the events (parquet, or CSV by suffix)")
    parser.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from quakesnake.association import resolve_config
    from quakesnake.evaluation import write_metrics
    from quakesnake.tabular import write_table
    from quakesnake.replay import replay_catalog, replay_days
    from quakesnake.traveltimes import read_layers

    if not args.catalog_dir.is_dir():
        raise UsageError(f"{args.catalog_dir}: catalog directory not found")
    if not args.false_pick_rate >= 0:
        raise UsageError(f"--false-pick-rate must be >= 0, got {args.false_pick_rate}")
    associator_cfg = _associator_config(args.associator, args.config)
    try:
        cfg = resolve_config(associator_cfg)
    except ValueError as exc:
        raise UsageError(f"associator {args.associator!r}: {exc}") from exc
    ref_events, ref_picks, ref_stations = read_reference(args.catalog_dir)

    model_path = args.velocity_model or args.catalog_dir / "velocity_1d.csv"
    needs_model = args.relocate or (cfg["type"] == "pyocto" and cfg["velocity_model"] == "1d")
    layers = None
    if needs_model:
        if not model_path.exists():
            raise UsageError(f"{model_path}: velocity model not found (needed for PyOcto 1d and --relocate; give --velocity-model)")
        try:
            layers = read_layers(model_path)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc

    spanned = replay_days(ref_events, ref_picks)
    if not spanned:
        raise UsageError(f"nothing to replay: {args.catalog_dir} holds no events and no picks")
    first = _day(args.first_day, "--first-day") or pd.Timestamp(spanned[0])
    last = _day(args.last_day, "--last-day") or pd.Timestamp(spanned[-1])
    if first > last:
        raise UsageError(f"--first-day {first:%Y-%m-%d} is after --last-day {last:%Y-%m-%d}")
    metrics, events, _ = replay_catalog(
        ref_events, ref_picks, ref_stations, associator_cfg, layers, false_pick_rate=args.false_pick_rate, seed=args.seed,
        relocate=args.relocate, relocation_options={"station_elevations": not args.sea_level_stations},
        name=args.associator, days=[day.strftime("%Y-%m-%d") for day in pd.date_range(first, last, freq="D")],
    )
    write_metrics(metrics, args.out)
    if args.events_out:
        write_table(events, args.events_out)
    print(format_replay(metrics))
    return 0


def _associator_config(name: str, config_path: Path | None) -> dict:
    """The associator named ``name`` in the YAML's ``associators:``, or without YAML the type ``name`` with its defaults."""
    from quakesnake.association import DEFAULTS

    if config_path is None:
        if name not in DEFAULTS:
            raise UsageError(f"unknown associator {name!r}: without --config use one of {', '.join(DEFAULTS)}")
        return {"type": name}
    import yaml

    if not config_path.exists():
        raise UsageError(f"{config_path}: file not found")
    try:
        document = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"{config_path}: not valid YAML ({exc})") from exc
    associators = document.get("associators") if isinstance(document, dict) else None
    if not isinstance(associators, dict) or not associators:
        raise UsageError(f"{config_path}: needs a top-level 'associators:' mapping of names to configurations")
    if name not in associators:
        raise UsageError(f"{config_path}: no associator {name!r} (has: {', '.join(associators)})")
    return dict(associators[name])


def _day(value: str | None, option: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value).normalize()
    except ValueError as exc:
        raise UsageError(f"{option} {value!r} is not a date ({exc})") from exc


def format_replay(metrics: dict) -> str:
    """:func:`format_metrics` with the replay's pick counts and, after relocation, a before/after table."""
    replay, picks = metrics["replay"], metrics["replay"]["picks"]
    lines = [
        f"{replay['associator']}: {replay['days']['count']} days, {picks['fed']} picks fed "
        f"({picks['without_station_coordinates']} dropped: station without coordinates; {picks['false']} false, "
        f"{picks['false_associated']} of them associated)",
        format_metrics(metrics),
    ]
    if "events_before_relocation" in metrics:
        lines.append(f"{'locations':12}{'recall':>8}{'precision':>11}{'origin MAE s':>14}{'epi MAE/RMSE km':>17}{'depth MAE/RMSE/bias km':>24}")
        for label, row in (("associator", metrics["events_before_relocation"]), ("relocated", metrics["events"])):
            lines.append(
                f"{label:12}{_number(row['recall']):>8}{_number(row['precision']):>11}{_number(row['origin_time_mae_s'], 2):>14}"
                f"{_number(row['epicentral_mae_km'], 2) + ' / ' + _number(row['epicentral_rmse_km'], 2):>17}"
                f"{' / '.join(_number(row[key], 2) for key in ('depth_mae_km', 'depth_rmse_km', 'depth_bias_km')):>24}"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- eval-picker

def _add_eval_picker(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval-picker", help="score a picker on labelled waveform records",
        description="Pick each labelled record (PhaseNet npz layout with labels.csv) with the STA/LTA baseline or a "
                    "SeisBench model and report P and S recall, precision and residuals against the labels.",
    )
    parser.add_argument("--npz-dir", required=True, type=Path, metavar="DIR", help="directory of the .npz records")
    parser.add_argument("--labels", required=True, type=Path, metavar="CSV", help="labels: fname, itp, its, channels")
    parser.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                        help="'stalta' for the baseline, a SeisBench class name (PhaseNetLight, EQTransformer, ...), "
                             "or a local path to a saved SeisBench model inside a directory named after its class")
    parser.add_argument("--weights", metavar="NAME", help="pretrained weights name or local path (with a class name --model)")
    parser.add_argument("--version", metavar="V", help="weights version (default: newest in the cache)")
    parser.add_argument("--threshold", type=float, metavar="X",
                        help="P and S probability threshold (default: the weights' own, else SeisBench's 0.3)")
    parser.add_argument("--p-threshold", type=float, metavar="X", help="P probability threshold")
    parser.add_argument("--s-threshold", type=float, metavar="X", help="S probability threshold")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="metrics JSON to write")
    parser.set_defaults(handler=run_eval_picker)


def run_eval_picker(args: argparse.Namespace) -> int:
    from quakesnake.evaluation import write_metrics
    from quakesnake.picker_evaluation import evaluate_picker, format_picker_metrics, read_labelled_records
    from quakesnake.picking import PickerConfigError

    picker_cfg = _eval_picker_config(args)
    if not args.labels.is_file():
        raise UsageError(f"{args.labels}: labels file not found")
    if not args.npz_dir.is_dir():
        raise UsageError(f"{args.npz_dir}: record directory not found")
    try:
        records = read_labelled_records(args.npz_dir, args.labels)
        metrics = evaluate_picker(records, picker_cfg)
    except (PickerConfigError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    write_metrics(metrics, args.out)
    print(format_picker_metrics(metrics))
    return 0


def _eval_picker_config(args: argparse.Namespace) -> dict:
    """The picker configuration the eval-picker options describe."""
    if args.threshold is not None and (args.p_threshold is not None or args.s_threshold is not None):
        raise UsageError("give either --threshold or --p-threshold/--s-threshold, not both")
    thresholds = {"p_threshold": args.p_threshold, "s_threshold": args.s_threshold}
    if args.threshold is not None:
        thresholds = dict.fromkeys(thresholds, args.threshold)
    thresholds = {key: value for key, value in thresholds.items() if value is not None}
    for key, value in thresholds.items():
        if not 0 < value < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be between 0 and 1, got {value}")

    if args.model.lower() == "stalta":
        if thresholds or args.weights or args.version:
            raise UsageError("--model stalta takes no --weights, --version or thresholds (it has its own trigger levels)")
        return {"type": "stalta"}
    model_path = Path(args.model).expanduser()
    if model_path.exists():
        if args.weights:
            raise UsageError(f"--model {args.model} is a saved model path: give no --weights")
        model_class = _class_of_saved_model(model_path)
        # SeisBench writes versioned models as <base>.pt.v<V> + <base>.json.v<V>; loading wants <base> and V.
        versioned = re.fullmatch(r"(.+)\.(?:pt|json)\.v([^.]+)", model_path.name)
        if versioned:
            if args.version not in (None, versioned[2]):
                raise UsageError(f"--model {args.model} is version {versioned[2]}, but --version says {args.version}")
            model_path, args.version = model_path.with_name(versioned[1]), versioned[2]
        weights = str(model_path)
    else:
        model_class, weights = args.model, args.weights
        if not weights:
            raise UsageError(f"--model {args.model} needs --weights (a pretrained name such as 'ethz', or a local path)")
    return {"type": "seisbench", "model": model_class, "weights": weights, "version": args.version, **thresholds}


def _class_of_saved_model(path: Path) -> str:
    """The SeisBench class a saved model belongs to, from its directory name (SeisBench's cache layout).

    A saved model's JSON holds its arguments but not its class, so the class is read from where
    it lives: ``.../phasenetlight/ethz.json.v2`` or a directory ``.../PhaseNet/`` holding the pair.
    """
    from quakesnake.picking.seisbench_adapter import waveform_model_classes

    classes = {name.lower(): name for name in waveform_model_classes()}
    for folder in (path, path.parent) if path.is_dir() else (path.parent,):
        if folder.name.lower() in classes:
            return classes[folder.name.lower()]
    raise UsageError(
        f"{path}: cannot tell the SeisBench class of this saved model from its directory name; "
        f"give --model CLASS --weights {path}"
    )


# --------------------------------------------------------------------------- dev-thresholds

def _add_dev_thresholds(subparsers) -> None:
    parser = subparsers.add_parser(
        "dev-thresholds", help="choose trained weights' P and S thresholds on the dev split of their datasets",
        description="Score saved weights on the dev split of the training datasets they were trained on at thresholds "
                    "0.1 to 0.9 and choose per phase the F1-best (within 0.5 s), as `snakemake train` does for the "
                    "weights it saves; with --write, store them in the weights' JSON (default_args P_threshold / "
                    "S_threshold), where pickers whose p_threshold / s_threshold are null take them.",
    )
    parser.add_argument("--model", default="PhaseNet", metavar="CLASS", help="SeisBench class of the weights (PhaseNet)")
    parser.add_argument("--weights", required=True, metavar="NAME_OR_PATH", help="a saved model (path) or a shipped name")
    parser.add_argument("--datasets", required=True, nargs="+", type=Path, metavar="DIR",
                        help="the training datasets (results/training/datasets/<day>)")
    parser.add_argument("--write", action="store_true", help="write the thresholds into the weights' JSON")
    parser.set_defaults(handler=run_dev_thresholds)


def run_dev_thresholds(args: argparse.Namespace) -> int:
    from quakesnake import training

    missing = [str(d) for d in args.datasets if not (d / "metadata.csv").is_file()]
    if missing:
        raise UsageError(f"not a training dataset (no metadata.csv): {', '.join(missing)}")
    chosen = training.weights_dev_thresholds(args.model, args.weights, args.datasets, write=args.write)
    print(f"{'threshold':>10}" + "".join(f"{'F1 ' + phase:>9}" for phase in chosen))
    for threshold in training.THRESHOLD_GRID:
        print(f"{threshold:>10g}" + "".join(f"{chosen[phase]['f1'][f'{threshold:g}']:>9.3f}" for phase in chosen))
    print("chosen: " + ", ".join(f"{phase} {c['threshold']:g}" for phase, c in chosen.items())
          + (" (written into the weights' JSON)" if args.write else ""))
    return 0


# --------------------------------------------------------------------------- sds-archive

def _add_sds_archive(subparsers) -> None:
    parser = subparsers.add_parser(
        "sds-archive", help="file loose miniSEED files into an SDS archive (the sds source's layout)",
        description="Write miniSEED files (any cut) into an SDS archive, one file per channel and UTC day, merged "
                    "with what the archive holds; with --stations, also write StationXML of its channels "
                    "(coordinates from the table, no responses: enough to pick and associate, not for magnitudes).",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="miniSEED files")
    parser.add_argument("--root", required=True, type=Path, metavar="DIR", help="SDS archive root (source.sds_root)")
    parser.add_argument("--stations", type=Path, metavar="CSV", help="station table: network, station, latitude, longitude[, elevation_m]")
    parser.add_argument("--inventory", type=Path, metavar="FILE", help="StationXML to write (source.inventory); needs --stations")
    parser.set_defaults(handler=run_sds_archive)


def run_sds_archive(args: argparse.Namespace) -> int:
    from quakesnake import tabular
    from quakesnake.sources.sds import archive_files, inventory_of_archive

    if (args.stations is None) != (args.inventory is None):
        raise UsageError("give --stations and --inventory together")
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    written = archive_files(args.files, args.root)
    print(f"{len(written)} day file(s) in {args.root}")
    if args.inventory is not None:
        inventory = inventory_of_archive(args.root, tabular.read_stations(args.stations))
        tabular.atomic_write(args.inventory, lambda tmp: inventory.write(str(tmp), format="STATIONXML"))
        print(f"{sum(len(s.channels) for n in inventory for s in n)} channel(s) in {args.inventory}")
    return 0


_SUBCOMMANDS = [_add_evaluate, _add_replay, _add_eval_picker, _add_dev_thresholds, _add_sds_archive]


if __name__ == "__main__":
    sys.exit(main())
