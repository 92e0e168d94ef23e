"""Planning units: a compute layer with the light layers fused behind it, and segments.

A *unit* is what the ILP allocates tiles to: one MAC-array layer (conv, linear, matmul, attention,
generic with MACs) together with the zero-work and vector layers that follow it (norms,
activations, residual adds, reshapes), which run on the same tiles as its epilogue. Graph inputs
join the unit of their first consumer. A *segment* is a run of consecutive units (in topological
order) that is resident on the chip at once; models too large for the chip are cut into several
segments that run one after another (temporal cuts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from isosched.graph.model import Graph
from isosched.hw.model import Hardware

__all__ = [
    "Segment",
    "Unit",
    "build_units",
    "cut_segments",
    "cut_work",
    "segment_units",
]

#: Share of the chip's SRAM a segment's resident weights may take (the rest buffers data tiles).
WEIGHT_SRAM_SHARE = 0.75


@dataclass(frozen=True, slots=True)
class Unit:
    """Layers that share one tile allocation.

    Attributes
    ----------
    id : str
        Id of the head layer.
    layers : tuple of str
        Head first, then fused followers, in topological order.
    macs, vector_ops, weight_bytes : int
        Totals over the unit's layers.
    """

    id: str
    layers: tuple[str, ...]
    macs: int
    vector_ops: int
    weight_bytes: int


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive units resident on the chip together.

    Attributes
    ----------
    index : int
        Position in execution order.
    units : tuple of Unit
        The units, in topological order.
    streamed : bool
        Whether the segment's weights exceed the chip and stream from DRAM while it runs.
    """

    index: int
    units: tuple[Unit, ...]
    streamed: bool = False

    @property
    def layers(self) -> list[str]:
        """Every layer of the segment."""
        return [lay for u in self.units for lay in u.layers]

    @property
    def weight_bytes(self) -> int:
        """Weights of all units, bytes."""
        return sum(u.weight_bytes for u in self.units)


def build_units(graph: Graph) -> list[Unit]:
    """Fuse every light layer into the unit of a compute layer next to it."""
    unit_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    pending: list[str] = []
    for lay in graph:
        if lay.macs > 0:
            unit_of[lay.id] = lay.id
            members[lay.id] = [lay.id]
            continue
        owner = next((unit_of[i] for i in lay.inputs if i in unit_of), None)
        if owner is None:
            pending.append(lay.id)
        else:
            unit_of[lay.id] = owner
            members[owner].append(lay.id)
    # Layers before any compute (graph inputs, embeddings): join their first consumer's unit.
    consumers = graph.consumers()
    for lid in reversed(pending):
        owner = next((unit_of[c] for c in consumers[lid] if c in unit_of), None)
        if owner is None:
            unit_of[lid] = lid
            members[lid] = [lid]
        else:
            unit_of[lid] = owner
            members[owner].insert(0, lid)
    order = {lay.id: i for i, lay in enumerate(graph)}
    units = []
    for head, lids in members.items():
        lids.sort(key=order.__getitem__)
        layers = [graph[x] for x in lids]
        units.append(
            Unit(
                id=head,
                layers=tuple(lids),
                macs=sum(x.macs for x in layers),
                vector_ops=sum(x.vector_ops for x in layers),
                weight_bytes=sum(x.weight_bytes for x in layers),
            )
        )
    units.sort(key=lambda u: min(order[x] for x in u.layers))
    return units


def segment_units(
    units: list[Unit], hw: Hardware, min_quarters: list[int] | None = None
) -> list[Segment]:
    """Cut units into consecutive segments that fit the chip.

    A segment's units need at most 4 quarter tiles per tile of the chip (``min_quarters``: the
    fewest quarters each unit can run on; default 1) and its resident weights at most 75 % of
    the chip's SRAM. A unit whose weights alone exceed that forms a segment of its own whose
    weights stream from DRAM.

    Notes
    -----
    Greedy (longest segments first): fewer segments mean fewer DRAM round trips of the
    activations between segments; weight reloads are paid once per segment either way.
    """
    cap_quarters = 4 * hw.tiles
    need = min_quarters if min_quarters is not None else [1] * len(units)
    cap_bytes = WEIGHT_SRAM_SHARE * hw.tiles * hw.tile.sram_bytes
    segments: list[Segment] = []
    current: list[Unit] = []
    used = quarters = 0

    def close(streamed: bool = False) -> None:
        nonlocal current, used, quarters
        if current:
            segments.append(Segment(len(segments), tuple(current), streamed))
        current, used, quarters = [], 0, 0

    for u, q in zip(units, need, strict=True):
        if u.weight_bytes > cap_bytes:
            close()
            current = [u]
            close(streamed=True)
            continue
        if quarters + q > cap_quarters or used + u.weight_bytes > cap_bytes:
            close()
        current.append(u)
        used += u.weight_bytes
        quarters += q
    close()
    return segments


def _windows(
    units: list[Unit], hw: Hardware, min_quarters: list[int], j: int
) -> list[tuple[int, bool]]:
    """Start ``i`` (latest first) and streaming of every feasible segment ``units[i:j]``.

    Feasible as :func:`segment_units` defines it; the walk back from ``j`` stops at the first
    window over the chip's quarters or weight budget (longer ones are over it too).
    """
    cap_quarters = 4 * hw.tiles
    cap_bytes = WEIGHT_SRAM_SHARE * hw.tiles * hw.tile.sram_bytes
    out: list[tuple[int, bool]] = []
    quarters = 0
    weights = 0
    for i in range(j - 1, -1, -1):
        u = units[i]
        streamed = u.weight_bytes > cap_bytes
        if streamed and i != j - 1:
            break
        quarters += min_quarters[i]
        weights += u.weight_bytes
        if not streamed and (quarters > cap_quarters or weights > cap_bytes):
            break
        out.append((i, streamed))
        if streamed:
            break
    return out


def cut_work(units: list[Unit], hw: Hardware, min_quarters: list[int]) -> int:
    """Work of :func:`cut_segments`, counted before doing it: units over every window it prices.

    Pricing a window of ``m`` units costs about ``m`` (a threshold search over its options), so
    the sum is machine-independent and proportional to the DP's time.
    """
    return sum(
        j - i
        for j in range(1, len(units) + 1)
        for i, _streamed in _windows(units, hw, min_quarters, j)
    )


def cut_segments(
    units: list[Unit],
    hw: Hardware,
    min_quarters: list[int],
    stage_cycles: Callable[[int, int], tuple[float, float] | None],
    boundary_bytes: Callable[[int], int],
    progress: Callable[[str], None] | None = None,
) -> list[Segment]:
    """Latency-minimising cut of the units into segments (dynamic programming over cut points).

    Parameters
    ----------
    units, hw, min_quarters
        As for :func:`segment_units`, whose limits define which segments are feasible.
    stage_cycles : callable (i, j) -> (slowest stage, sum of stages) or None
        Estimated stage times of units ``i..j-1`` as one segment (``None``: infeasible).
    boundary_bytes : callable (i) -> int
        Bytes that cross a cut before unit ``i`` (written to and read back from DRAM).
    progress : callable, optional
        Called with ``cutting segments: j/n units`` about ten times for long models.

    Notes
    -----
    A segment's estimated latency is weight loading + fill + (B - 1) · II, plus the DRAM round
    trip of the activations crossing its cuts. Units whose weights exceed the chip's SRAM budget
    stay segments of their own, with B = 1 and streamed weights. The work grows with the units
    times the longest feasible segment: :func:`cut_work` counts it beforehand.
    """
    n = len(units)
    cap_bytes = WEIGHT_SRAM_SHARE * hw.tiles * hw.tile.sram_bytes
    b = hw.dataflow.data_tiles
    bw = hw.dram_bytes_per_cycle
    best = [0.0] + [float("inf")] * n
    back = [0] * (n + 1)
    every = max(1, n // 10)
    for j in range(1, n + 1):
        weights = 0
        for i, streamed in _windows(units, hw, min_quarters, j):
            weights += units[i].weight_bytes
            est = stage_cycles(i, j)
            if est is None:
                continue
            slowest, total = est
            data_tiles = 1 if streamed else b
            cost = (0 if streamed else weights / bw) + total / data_tiles
            cost += (data_tiles - 1) * slowest / data_tiles
            cost += 2 * (boundary_bytes(i) if i > 0 else 0) / bw
            if best[i] + cost < best[j]:
                best[j], back[j] = best[i] + cost, i
        if progress is not None and n >= 100 and (j % every == 0 or j == n):
            progress(f"cutting segments: {j}/{n} units")
    cuts = []
    j = n
    while j > 0:
        cuts.append((back[j], j))
        j = back[j]
    cuts.reverse()
    return [
        Segment(k, tuple(units[i:j]), any(u.weight_bytes > cap_bytes for u in units[i:j]))
        for k, (i, j) in enumerate(cuts)
    ]
