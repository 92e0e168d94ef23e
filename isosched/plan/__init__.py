"""Planning a model: ILP tile allocation (CP-SAT), Layer Concatenate and Split, placement."""

from isosched.plan.cache import PLAN_CACHE_VERSION, PlanCache, default_cache_dir, plan_key
from isosched.plan.ilp import AllocationResult, InfeasibleAllocation, solve_allocation
from isosched.plan.lcs import build_tile_graph
from isosched.plan.options import Option, unit_options
from isosched.plan.placement import PlacementError, place_tile_graph, placement_library
from isosched.plan.planner import PLAN_SCHEMA, Plan, SegmentPlan, plan_model, plan_to_doc
from isosched.plan.units import Segment, Unit, build_units, segment_units

__all__ = [
    "PLAN_CACHE_VERSION",
    "PLAN_SCHEMA",
    "AllocationResult",
    "InfeasibleAllocation",
    "Option",
    "Plan",
    "PlanCache",
    "PlacementError",
    "Segment",
    "SegmentPlan",
    "Unit",
    "build_tile_graph",
    "build_units",
    "default_cache_dir",
    "place_tile_graph",
    "placement_library",
    "plan_key",
    "plan_model",
    "plan_to_doc",
    "segment_units",
    "solve_allocation",
    "unit_options",
]
