"""The ``quakesnake`` command line: one subcommand per task, each a function taking parsed arguments.

Add a subcommand by writing ``_add_<name>(subparsers)`` that registers its arguments and sets
``handler``, and listing it in ``_SUBCOMMANDS``. Handlers return the exit code; expected
failures (unreadable tables, bad values) raise :class:`UsageError` or ``TableError`` and end
with a one-line message and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from quakesnake.io import TableError, read_reference, read_stations, read_table

logger = logging.getLogger(__name__)

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Input the user has to fix; the message names the file or option and the reason."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except (UsageError, TableError) as exc:
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
    from quakesnake.evaluation import plot_event_map, plot_pick_residuals, score_catalog, write_metrics

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
        plot_event_map(score.pred_events, score.ref_events, score.event_matches, ref_stations, args.plots / "event_map.png")
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


def format_metrics(metrics: dict) -> str:
    """A small fixed-width table of the headline numbers."""
    def number(value, digits=3):
        return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    events = metrics["events"]
    lines = [
        f"window {metrics['window']['start']} .. {metrics['window']['end']}",
        f"{'':8}{'recall':>8}{'precision':>11}{'n_ref':>8}{'n_pred':>8}{'tp':>7}",
    ]
    for label, row in (("P picks", metrics["picks"]["P"]), ("S picks", metrics["picks"]["S"]), ("events", events)):
        lines.append(f"{label:8}{number(row['recall']):>8}{number(row['precision']):>11}{row['n_ref']:>8}{row['n_pred']:>8}{row['tp']:>7}")
    lines.append(
        f"origin time MAE {number(events['origin_time_mae_s'], 2)} s, epicentre MAE {number(events['epicentral_mae_km'], 2)} km, "
        f"depth MAE {number(events['depth_mae_km'], 2)} km (bias {number(events['depth_bias_km'], 2)})"
    )
    return "\n".join(lines)


_SUBCOMMANDS = [_add_evaluate]
