"""The consensus picker: keep a pick only where at least ``min_agree`` of its member pickers agree.

A picker entry ``{type: consensus, members: [picker, picker, ...], min_agree: k, tolerance_s:
{P: s, S: s}}`` runs every member on the same stream (:func:`quakesnake.picking.stream.pick_stream`)
and keeps the picks that :func:`agreed_picks` finds: different pickers rarely make the same false
pick (a network's artefact on a glitch, STA/LTA's trigger on a noise burst), while they agree on
clear arrivals, so agreement trades a little recall for precision.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from quakesnake import tabular
from quakesnake.picking.picks import empty_picks

INSTRUMENT = ["network", "station", "location", "phase"]


def agreed_picks(member_picks: list[pd.DataFrame], min_agree: int, tolerance_s: dict[str, float],
                 picker_name: str = "") -> pd.DataFrame:
    """The picks on which at least ``min_agree`` of the members agree, as one picks table.

    ``member_picks`` are the members' picks tables (:data:`quakesnake.tabular.PICK_COLUMNS`), in
    the members' order. Per instrument and phase the pooled picks, in time order, form groups
    wherever consecutive picks lie within ``tolerance_s[phase]`` of each other (a group may
    chain wider than the tolerance only through picks each within it of the next). A group that
    holds picks of ``min_agree`` different members or more is one consensus pick: its time is
    that of the first-listed member in the group (list the most precise picker first), its
    probability the mean over the agreeing members of each one's best probability in the group.

    Why grouping on sorted times, not ``pd.merge_asof``: merge_asof pairs two tables, and
    agreement of k of n members would need a merge per pair and a reconciliation of the pairs;
    one sort and a running group number settles all members at once.
    """
    frames = [table[tabular.PICK_COLUMNS].assign(member=index) for index, table in enumerate(member_picks) if len(table)]
    if not frames:
        return empty_picks(picker_name)
    pooled = pd.concat(frames, ignore_index=True).sort_values(INSTRUMENT + ["time", "member"], kind="stable")
    pooled = pooled.reset_index(drop=True)
    tolerance = pd.to_timedelta(pooled["phase"].map(tolerance_s).astype(float), unit="s")
    gap = pooled.groupby(INSTRUMENT, sort=False)["time"].diff()
    pooled["group"] = (gap.isna() | (gap > tolerance)).cumsum()

    members = pooled.groupby("group")["member"].nunique()
    agreeing = pooled[pooled["group"].isin(members.index[members >= min_agree])]
    best_of_member = agreeing.groupby(["group", "member"])["probability"].max()
    probability = best_of_member.groupby("group").mean()
    first = agreeing.sort_values(["group", "member", "probability"], ascending=[True, True, False], kind="stable")
    first = first.drop_duplicates("group").set_index("group")
    out = first.assign(probability=probability.reindex(first.index).to_numpy(np.float64), picker=picker_name)
    out = out[tabular.PICK_COLUMNS].sort_values(["time", "network", "station", "location", "phase"], kind="stable")
    return out.reset_index(drop=True)
