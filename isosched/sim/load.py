"""Offered load of a scenario on a chip: how busy its streams keep the chip, before any policy.

A policy-independent figure, computed from the scenario's rates and each model's best latency
alone on the whole chip; it states how contended a scenario is without replaying it.
"""

from __future__ import annotations

from typing import Any

from isosched.cost import roofline_cycles
from isosched.sim.planbook import PlanBook
from isosched.trace.generate import check_scale
from isosched.trace.scenario import Scenario

__all__ = ["offered_load"]


def offered_load(scenario: Scenario, plans: PlanBook, scale: float = 1.0) -> dict[str, Any]:
    """Whole-chip time the scenario's streams ask for, per second, at ``scale``.

    Parameters
    ----------
    scenario : Scenario
        The streams.
    plans : PlanBook
        Plans and profiles of the chip (must know every model of the scenario).
    scale : float
        Load scale (periods divided by it).

    Returns
    -------
    dict
        ``utilisation``: Σ over streams of release rate (Hz, times its probability and its
        upstream streams' probabilities) × the model's latency alone on the whole chip (the
        faster of its LTS profile and its whole-chip TSS plan, s). 1.0 means that even
        one-at-a-time on the whole chip at the best latency, the chip would never idle.
        ``dram_utilisation``: the same with the LTS run's DRAM time (bytes / bandwidth).
        ``streams``: per stream, ``rate_hz``, ``alone_ms`` and ``share``.

    Notes
    -----
    Running jobs side by side on parts of the chip can do better than one at a time (small
    models do not fill a whole chip), so a utilisation above 1 does not prove overload and
    one below 1 does not prove feasibility; it ranks and states contention, nothing more.

    Raises
    ------
    ScenarioError
        For a scale :func:`~isosched.trace.generate.check_scale` refuses.
    """
    check_scale(scale)
    hw = plans.hw
    whole = (hw.width, hw.height)
    by_id = {s.id: s for s in scenario.streams}
    streams: dict[str, Any] = {}
    total = dram_total = 0.0
    for s in scenario.streams:
        rate = 1000.0 / s.period_ms * scale * s.probability
        up = s.depends_on
        while up is not None:
            rate *= by_id[up].probability
            up = by_id[up].depends_on
        lts = plans.lts(s.model, hw.tiles, 1.0)
        tss = plans.job_plan(s.model, whole).base_timing
        tss_us = hw.cycles_to_us(roofline_cycles(tss.pieces, hw.dram_bytes_per_cycle))
        alone_us = min(lts.latency_us, tss_us)
        dram_us = hw.cycles_to_us(sum(b for _, b in lts.pieces) / hw.dram_bytes_per_cycle)
        share = rate * alone_us * 1e-6
        total += share
        dram_total += rate * dram_us * 1e-6
        streams[s.id] = {
            "model": s.model,
            "rate_hz": rate,
            "alone_ms": alone_us / 1e3,
            "share": share,
        }
    return {
        "scenario": scenario.name,
        "hw": hw.name,
        "scale": scale,
        "utilisation": total,
        "dram_utilisation": dram_total,
        "streams": streams,
    }
