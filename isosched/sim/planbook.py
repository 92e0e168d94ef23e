"""Plans and profiles a replay looks up: TSS plans per (model, tile budget), LTS layer costs.

The simulator receives the models (graphs) and this book; it never loads a model by name. TSS
plans come from a :class:`~isosched.plan.PlanCache` (memory, then disk, then the planner), one per
(model, budget); a budget is a box of the chip (``w × h`` tiles, see
:func:`~isosched.sim.occupancy.region_shapes`), planned with the chip's whole DRAM bandwidth
(:func:`sub_hardware`; the engine times each running job for the share it gets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from isosched.cost import JobCost, lts_job_cost, roofline_cycles
from isosched.errors import IsoschedError
from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.match.placer import Library, library_images
from isosched.plan.cache import PlanCache
from isosched.sim.jobplan import JobPlan, job_plan
from isosched.sim.occupancy import region_shapes

__all__ = ["MIN_BUDGET_TILES", "PLAN_MATCH_NODES", "PlanBook", "Profile", "sub_hardware"]

#: Smallest tile budget plans are made for (a 2×2 box).
MIN_BUDGET_TILES = 4

#: Matcher node budget of the planner's own placement (machine-independent).
PLAN_MATCH_NODES = 5_000

Shape = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Profile:
    """Latency and energy of one LTS inference.

    Attributes
    ----------
    latency_us : float
        One inference alone on its tiles with the DRAM share it was priced at, microseconds.
    energy_pj : float
        One inference, picojoules.
    pieces : tuple of (float, float)
        ``(cycles, DRAM bytes)`` per layer: the engine re-times the job for the DRAM share it
        actually gets (DRAM bandwidth is shared by the running jobs).
    """

    latency_us: float
    energy_pj: float
    pieces: tuple[tuple[float, float], ...] = ()
    live_bytes: tuple[int, ...] = ()

    def state_bytes(self, done: float, bytes_per_cycle: float) -> int:
        """Activations held on-chip where ``done`` of the inference is complete (its piece)."""
        if not self.pieces:
            return 0
        times = [max(c, b / bytes_per_cycle) for c, b in self.pieces]
        total = sum(times) or 1.0
        acc = 0.0
        for i, t in enumerate(times):
            acc += t
            if acc / total >= done - 1e-12:
                return self.live_bytes[i] if i < len(self.live_bytes) else 0
        return self.live_bytes[-1] if self.live_bytes else 0


def sub_hardware(hw: Hardware, shape: Shape) -> Hardware:
    """The chip restricted to a ``w × h`` box.

    The box keeps the chip's whole DRAM bandwidth: plans are priced as if they had all of it,
    and the engine re-times every running job for the share it actually gets (DESIGN §3: DRAM
    bandwidth is one shared, work-conserving resource).
    """
    w, h = shape
    return hw.model_copy(update={"mesh": (w, h), "name": f"{hw.name}[{w}x{h}]"})


class PlanBook:
    """Every plan and profile of one chip and a set of models, computed once.

    Parameters
    ----------
    hw : Hardware
        The chip.
    models : mapping name -> Graph
        The models jobs may name.
    cache : PlanCache, optional
        Where plans come from (default: an in-memory cache, no disk).

    Attributes
    ----------
    wall_limited : bool
        A plan in the book was cut short by a planner's wall-clock safety net (so it may
        differ on another machine): every run that reads this book says so.
    """

    def __init__(
        self, hw: Hardware, models: Mapping[str, Graph], cache: PlanCache | None = None
    ) -> None:
        self.hw = hw
        self.models = dict(models)
        self.cache = cache if cache is not None else PlanCache(disk=False)
        self.wall_limited = False
        self.budgets: list[Shape] = region_shapes(
            hw.width, hw.height, smallest=min(MIN_BUDGET_TILES, hw.tiles)
        )
        self._plans: dict[tuple[str, Shape, bool], JobPlan] = {}
        self._by_budget: dict[tuple[str, bool], tuple[JobPlan, ...]] = {}
        self._libraries: dict[tuple[str, Shape, bool], Library] = {}
        self._lts: dict[tuple[str, int, float], Profile] = {}
        self._lts_cost: dict[tuple[str, int], JobCost] = {}

    def graph(self, model: str) -> Graph:
        """The graph of ``model``.

        Raises
        ------
        IsoschedError
            If the book was not given that model.
        """
        try:
            return self.models[model]
        except KeyError:
            raise IsoschedError(f"no graph for model {model!r} was given to the replay") from None

    def job_plan(self, model: str, shape: Shape, lcs: bool = True) -> JobPlan:
        """The TSS plan of ``model`` for a ``shape`` box (``lcs=False``: the "no LCS" plan)."""
        key = (model, shape, lcs)
        got = self._plans.get(key)
        if got is None:
            # The TSS planner never reads the LTS dataflow option: plans made with it at its
            # default serve both physics settings (one plan, one cache entry).
            flow = self.hw.dataflow.model_copy(update={"lts_activations_via_dram": False})
            tss_hw = self.hw.model_copy(update={"dataflow": flow})
            plan = self.cache.plan(  # lcs=True leaves the cache key as it was before the switch
                self.graph(model),
                sub_hardware(tss_hw, shape),
                match_nodes=PLAN_MATCH_NODES,
                lcs=lcs,
            )
            self.wall_limited = self.wall_limited or plan.wall_limited
            got = self._plans[key] = job_plan(plan, self.hw, shape[0] * shape[1], self.graph(model))
        return got

    def job_plans(self, model: str, lcs: bool = True) -> tuple[JobPlan, ...]:
        """The TSS plans of ``model`` for every budget, in the order of ``budgets``.

        One look-up for what a policy sizing a job asks of every budget in turn.
        """
        got = self._by_budget.get((model, lcs))
        if got is None:
            got = self._by_budget[(model, lcs)] = tuple(
                self.job_plan(model, shape, lcs) for shape in self.budgets
            )
        return got

    def library(self, model: str, shape: Shape, lcs: bool = True) -> Library:
        """Images of the plan's placement on the chip (the preemption-ready library)."""
        key = (model, shape, lcs)
        got = self._libraries.get(key)
        if got is None:
            jp = self.job_plan(model, shape, lcs)
            got = self._libraries[key] = library_images(jp.base, self.hw.width, self.hw.height)
        return got

    def lts(self, model: str, tiles: int, dram_share: float = 1.0) -> Profile:
        """LTS profile on ``tiles`` tiles, priced at a ``dram_share`` of the bandwidth.

        Layer outputs stay on-chip when they fit (see :func:`~isosched.cost.lts_job_cost`).
        """
        key = (model, tiles, dram_share)
        got = self._lts.get(key)
        if got is None:
            base = self._lts_cost.get((model, tiles))
            if base is None:
                base = self._lts_cost[(model, tiles)] = lts_job_cost(
                    list(self.graph(model)), tiles, self.hw
                )
            bw = self.hw.dram_bytes_per_cycle * dram_share
            cycles = roofline_cycles(base.pieces, bw)
            got = self._lts[key] = Profile(
                self.hw.cycles_to_us(cycles), base.energy_pj, base.pieces, base.live_bytes
            )
        return got

    def warm(
        self,
        models: set[str],
        progress: Callable[[str], None] | None = None,
        no_lcs: bool = False,
    ) -> None:
        """Compute every plan and profile a replay of ``models`` can look up.

        ``progress`` hears of every (model, budget) before it is planned and profiled, counted
        ``done/total`` so that a long planning phase shows how far it is. ``no_lcs`` also
        plans the "no LCS" ablation's plans.
        """
        total = len(models) * len(self.budgets)
        done = 0
        for model in sorted(models):
            for shape in self.budgets:
                if progress is not None:
                    progress(
                        f"plans {done}/{total}: {model} on {shape[0]}x{shape[1]} tiles "
                        "(plan, placements, LTS profile)"
                    )
                done += 1
                self.job_plan(model, shape)
                self.library(model, shape)
                k = shape[0] * shape[1]
                self.lts(model, k, k / self.hw.tiles)
                self.lts(model, k, 1.0)
                if no_lcs:
                    self.job_plan(model, shape, lcs=False)
                    self.library(model, shape, lcs=False)
        if progress is not None:
            progress(f"plans {total}/{total}: every model planned on every budget")

    def export(self) -> dict[str, object]:
        """What another process needs to skip planning (picklable)."""
        return {
            "plans": dict(self._plans),
            "lts": dict(self._lts),
            "wall_limited": self.wall_limited,
        }

    def seed(self, state: Mapping[str, object]) -> None:
        """Take plans and profiles exported by :meth:`export` (plans are deterministic)."""
        plans = state.get("plans")
        lts = state.get("lts")
        if isinstance(plans, dict):
            self._plans.update(plans)
        if isinstance(lts, dict):
            self._lts.update(lts)
        self.wall_limited = self.wall_limited or bool(state.get("wall_limited"))
