"""Merge the per-station pick tables of one day into one table."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from quakesnake.tabular import PICK_COLUMNS, concat_tables, location_codes, read_table


def merge_station_picks(paths_or_frames) -> pd.DataFrame:
    """Concatenate pick tables (paths or DataFrames), drop exact duplicates, sort by time.

    Duplicates arise when overlapping shards or a rerun deliver the same pick twice; only rows
    equal in every column (after a missing location code becomes "") are dropped. Ties in time keep a stable order by network, station,
    location and phase, so the merged table does not depend on the input order.
    """
    frames = [
        read_table(item, PICK_COLUMNS) if isinstance(item, (str, Path)) else item
        for item in paths_or_frames
    ]
    merged = concat_tables(frames, PICK_COLUMNS)
    # CSV reads an empty location code as NaN; normalise so file and frame copies compare equal
    merged["location"] = location_codes(merged["location"])
    merged = merged.drop_duplicates()
    merged = merged.sort_values(["time", "network", "station", "location", "phase"], kind="stable")
    return merged.reset_index(drop=True)
