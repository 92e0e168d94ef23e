"""How long a model takes on a region: TSS from plans, LTS from the per-layer cost model.

Profiles are computed once per (model, region shape) and cached: the simulator's hot path looks
them up. A job on k of the chip's T tiles gets k/T of the DRAM bandwidth (ports scale with the
region), unless a policy says otherwise (MoCA).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from isosched.cost import lts_layer_cost
from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.io.model_source import load_model
from isosched.plan import plan_model

__all__ = [
    "Profile",
    "export_profiles",
    "import_profiles",
    "lts_profile",
    "sub_hardware",
    "tss_profile",
]


@dataclass(frozen=True, slots=True)
class Profile:
    """Latency and energy of one inference of a model on a region.

    Attributes
    ----------
    latency_us : float
        Wall time of one inference alone on the region, microseconds.
    energy_pj : float
        Energy of one inference, picojoules.
    state_bytes : int
        Live state a preemption must checkpoint (largest activation tensor), bytes.
    """

    latency_us: float
    energy_pj: float
    state_bytes: int


def sub_hardware(hw: Hardware, shape: tuple[int, int]) -> Hardware:
    """The chip restricted to a ``w × h`` region, with its share of DRAM bandwidth."""
    w, h = shape
    share = (w * h) / hw.tiles
    dram = hw.dram.model_copy(update={"bandwidth_gb_s": hw.dram.bandwidth_gb_s * share})
    return hw.model_copy(update={"mesh": (w, h), "name": f"{hw.name}[{w}x{h}]", "dram": dram})


@lru_cache(maxsize=256)
def _graph(model: str) -> Graph:
    return load_model(model)


def _state_bytes(g: Graph) -> int:
    return max((lay.output_bytes for lay in g), default=0)


TssKey = tuple[str, Hardware, tuple[int, int]]
_TSS: dict[TssKey, Profile] = {}


def tss_profile(model: str, hw: Hardware, shape: tuple[int, int]) -> Profile:
    """TSS profile: the plan of ``model`` on a ``shape`` region (units, ILP, LCS, placement)."""
    key = (model, hw, shape)
    got = _TSS.get(key)
    if got is None:
        g = _graph(model)
        plan = plan_model(g, sub_hardware(hw, shape), match_nodes=5_000)
        got = _TSS[key] = Profile(plan.latency_ms * 1e3, plan.energy_mj * 1e9, _state_bytes(g))
    return got


def export_profiles() -> dict[TssKey, Profile]:
    """The TSS profiles computed so far (picklable), to seed another process's cache."""
    return dict(_TSS)


def import_profiles(profiles: dict[TssKey, Profile]) -> None:
    """Seed this process's TSS cache (plans are deterministic, so any process's are valid)."""
    _TSS.update(profiles)


@lru_cache(maxsize=4096)
def lts_profile(model: str, hw: Hardware, tiles: int, dram_share: float) -> Profile:
    """LTS profile: layers one after another on ``tiles`` tiles with a share of DRAM bandwidth."""
    g = _graph(model)
    cycles = 0.0
    energy = 0.0
    for lay in g:
        c = lts_layer_cost(lay, tiles, hw, dram_share=dram_share)
        cycles += c.cycles
        energy += c.energy.total
    return Profile(hw.cycles_to_us(cycles), energy, _state_bytes(g))
