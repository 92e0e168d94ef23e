"""Placement as subgraph isomorphism: Ullmann refinement over CSR, guided by MCTS."""

from isosched.match.candidates import candidate_matrix, csr_nbytes, refine
from isosched.match.matcher import (
    ENGINES,
    STOP_REASONS,
    MatchResult,
    TileMatcher,
    placement_cost,
    placement_errors,
)
from isosched.match.planted import PLANTED_KINDS, PlantedInstance, planted_instance
from isosched.match.target import ChipTarget, HeldTile, MatchInputError, mesh_target

__all__ = [
    "ENGINES",
    "PLANTED_KINDS",
    "STOP_REASONS",
    "ChipTarget",
    "HeldTile",
    "MatchInputError",
    "MatchResult",
    "PlantedInstance",
    "TileMatcher",
    "candidate_matrix",
    "csr_nbytes",
    "mesh_target",
    "placement_cost",
    "placement_errors",
    "planted_instance",
    "refine",
]
