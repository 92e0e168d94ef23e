"""One order, one colour and one dash pattern per policy, and stable colours per stream.

Every chart and table of the dashboard takes policies in :data:`POLICY_ORDER` and draws each
in its colour and dash, so that a policy looks the same on every page. The colours are the
Okabe–Ito colour-blind-safe set; the dash patterns tell lines apart where colours do not (in grey
print) and where two policies' lines coincide (a dashed line over a solid one shows both).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "POLICY_COLOURS",
    "POLICY_DASHES",
    "POLICY_ORDER",
    "policy_colour_encoding",
    "policy_dash_encoding",
    "policy_order",
    "stream_colour",
    "stream_colours",
]

#: The paper's mechanism first, then the TSS baseline, then the LTS baselines, then the floor.
POLICY_ORDER: tuple[str, ...] = ("isosched", "hasp", "prema", "planaria", "cdmsa", "moca", "fcfs")

#: Okabe–Ito colours; their lightness differs enough to tell most of them apart in grey too.
POLICY_COLOURS: dict[str, str] = {
    "isosched": "#0072B2",  # blue
    "hasp": "#E69F00",  # orange
    "prema": "#009E73",  # bluish green
    "planaria": "#D55E00",  # vermillion
    "cdmsa": "#CC79A7",  # reddish purple
    "moca": "#56B4E9",  # sky blue
    "fcfs": "#000000",  # black
}

#: Stroke dash patterns (pixels on, off, ...): solid for IsoSched.
POLICY_DASHES: dict[str, list[int]] = {
    "isosched": [1, 0],
    "hasp": [8, 4],
    "prema": [2, 3],
    "planaria": [10, 3, 2, 3],
    "cdmsa": [14, 4],
    "moca": [5, 2],
    "fcfs": [1, 5],
}

_OTHER_COLOUR = "#888888"
_OTHER_DASH = [3, 3]

#: Colours for streams and jobs (tableau20 without its greys), picked by a hash of the name.
_STREAM_COLOURS = (
    "#4E79A7", "#A0CBE8", "#F28E2B", "#FFBE7D", "#59A14F", "#8CD17D", "#B6992D", "#F1CE63",
    "#499894", "#86BCB6", "#E15759", "#FF9D9A", "#D37295", "#FABFD2", "#B07AA1", "#D4A6C8",
    "#9D7660", "#D7B5A6",
)  # fmt: skip


def policy_order(names: Iterable[str]) -> list[str]:
    """``names`` in the dashboard's order: known policies first, then the rest by name."""
    rank = {p: i for i, p in enumerate(POLICY_ORDER)}
    return sorted(set(names), key=lambda p: (rank.get(p, len(rank)), p))


def policy_colour_encoding(
    names: Iterable[str], channel_title: str = "policy", lines: bool = True
) -> dict[str, Any]:
    """A Vega-Lite ``color`` encoding of the ``policy`` field with the fixed palette.

    With ``lines`` the legend draws each policy as a stroke (with its dash, when the chart also
    encodes ``strokeDash``), otherwise as a square.
    """
    order = policy_order(names)
    legend: dict[str, Any] = {"title": channel_title, "symbolOpacity": 1}
    if lines:
        legend |= {"symbolType": "stroke", "symbolStrokeWidth": 2.5, "symbolSize": 400}
    return {
        "field": "policy",
        "type": "nominal",
        "sort": order,
        "scale": {"domain": order, "range": [POLICY_COLOURS.get(p, _OTHER_COLOUR) for p in order]},
        "legend": legend,
    }


def policy_dash_encoding(names: Iterable[str], channel_title: str = "policy") -> dict[str, Any]:
    """A Vega-Lite ``strokeDash`` encoding of the ``policy`` field (one legend with colour)."""
    order = policy_order(names)
    return {
        "field": "policy",
        "type": "nominal",
        "sort": order,
        "scale": {"domain": order, "range": [POLICY_DASHES.get(p, _OTHER_DASH) for p in order]},
        "legend": {"title": channel_title},
    }


def _stream_slot(name: str) -> int:
    """The palette position a stream's name hashes to."""
    digest = hashlib.blake2s(name.encode("utf-8"), digest_size=2).digest()
    return int.from_bytes(digest, "big") % len(_STREAM_COLOURS)


def stream_colour(name: str) -> str:
    """A stable colour for a stream (the same on every page and in every run)."""
    return _STREAM_COLOURS[_stream_slot(name)]


def stream_colours(names: Iterable[str]) -> dict[str, str]:
    """Distinct colours for a set of streams (a run's), each as near its own as the set allows.

    Streams take their :func:`stream_colour` in name order; a stream whose colour an earlier
    one took gets the next free colour of the palette. So up to 18 streams never share a
    colour, and a stream keeps its own colour unless its hash collides within the set.
    """
    size = len(_STREAM_COLOURS)
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        slot = _stream_slot(name)
        taken = set(out.values())
        free = [k for k in range(size) if _STREAM_COLOURS[(slot + k) % size] not in taken]
        out[name] = _STREAM_COLOURS[(slot + (free[0] if free else 0)) % size]
    return out
