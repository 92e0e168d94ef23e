"""The ``isosched.hardware/v1`` description of a tile-spatial accelerator.

Every number the cost model uses is a field here; nothing chip-specific is a constant in code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "HARDWARE_SCHEMA",
    "MAX_SIDE",
    "MAX_TILES",
    "Dataflow",
    "Dram",
    "Energy",
    "Hardware",
    "Noc",
    "Preemption",
    "Scheduler",
    "Tile",
    "Utilisation",
]

HARDWARE_SCHEMA = "isosched.hardware/v1"

#: Most tiles a chip may have (the largest preset, ``wafer-64x64``): planning time and memory
#: grow with the tiles, and a 1024x1024 mesh took gigabytes before failing.
MAX_TILES = 4096

#: Longest mesh side, tiles.
MAX_SIDE = 128

# Ranges are chosen so that every accepted file can be planned: a bandwidth or utilisation of
# 1e-300 once passed and made stage times no solver takes.
Pos = Annotated[float, Field(ge=0.01, le=1e9)]
NonNeg = Annotated[float, Field(ge=0, le=1e9)]
Fraction = Annotated[float, Field(ge=0.01, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tile(_Strict):
    """One tile (core): MAC array, vector unit and local SRAM."""

    macs_per_cycle: Annotated[int, Field(ge=1, le=10**7)] = Field(
        description="Multiply-accumulates per cycle of the tile's MAC array."
    )
    vector_ops_per_cycle: Annotated[int, Field(ge=1, le=10**7)] = Field(
        description="Element operations per cycle of the vector unit (pooling, norms, ...)."
    )
    sram_bytes: Annotated[int, Field(ge=1024, le=2**40)] = Field(
        description="Local SRAM (global buffer) per tile, bytes."
    )


class Noc(_Strict):
    """The on-chip mesh network (XY routing)."""

    link_bytes_per_cycle: Pos = Field(description="Bandwidth of one link, each way, bytes/cycle.")
    hop_cycles: NonNeg = Field(default=1.0, description="Router + link latency per hop, cycles.")


class Dram(_Strict):
    """Off-chip memory reached through ports on the west and east mesh edges."""

    bandwidth_gb_s: Pos = Field(description="Total DRAM bandwidth, GB/s (10^9 bytes/s).")
    ports: Literal["west_east", "west", "all_edges"] = "west_east"


class Energy(_Strict):
    """Energy per action, picojoules."""

    mac_pj: NonNeg = Field(description="One multiply-accumulate at the graph's data type, pJ.")
    vector_op_pj: NonNeg = Field(description="One vector-unit element operation, pJ.")
    sram_pj_per_bit: NonNeg = Field(description="SRAM read or write, pJ/bit.")
    noc_pj_per_bit_hop: NonNeg = Field(description="Moving one bit over one hop, pJ.")
    dram_pj_per_bit: NonNeg = Field(description="DRAM read or write, pJ/bit.")
    leakage_mw_per_tile: NonNeg = Field(default=0.0, description="Static power per tile, mW.")


class Utilisation(_Strict):
    """Fraction of peak MAC throughput a layer reaches on the array, by layer class."""

    conv: Fraction = 0.85
    conv_depthwise: Fraction = 0.25
    conv_transpose: Fraction = 0.7
    linear: Fraction = 0.9
    matmul: Fraction = 0.8
    attention: Fraction = 0.7
    generic: Fraction = 0.5


class Dataflow(_Strict):
    """Tile-spatial dataflow parameters."""

    data_tiles: Annotated[int, Field(ge=1, le=4096)] = Field(
        default=16,
        description="Data tiles B a segment's input is cut into; the pipeline runs B waves.",
    )
    lts_activations_via_dram: bool = Field(
        default=False,
        description="LTS writes every intermediate tensor to DRAM and reads it back (the "
        "IsoSched paper's premise) instead of keeping it in SRAM when it fits.",
    )


class Preemption(_Strict):
    """Costs of stopping and resuming a job."""

    drain_cycles: NonNeg = Field(
        default=2000.0, description="Fixed cycles to stop a pipeline at a data-tile boundary."
    )
    restore_cycles: NonNeg = Field(
        default=2000.0, description="Fixed cycles to restart a pipeline after restoring state."
    )


class Scheduler(_Strict):
    """What a scheduling decision costs in simulated time, per unit of counted work.

    Decisions are charged from the work they counted, never from wall time, so that a replay
    is the same on every machine (DESIGN §6, §10). The numbers were calibrated once on the
    project's reference machine class (``bench/calibrate_decisions.py``).
    """

    decision_ns: NonNeg = Field(
        default=2000.0, description="Fixed cost of a decision that looked for tiles, ns."
    )
    lookup_ns: NonNeg = Field(
        default=290.0, description="Testing one stored placement against the occupancy map, ns."
    )
    match_node_ns: NonNeg = Field(
        default=7_300.0, description="One search node of the online matcher, ns."
    )
    cpsat_ns_per_dtime: Annotated[float, Field(ge=0, le=1e15)] = Field(
        default=2.7e11,
        description="Host time per unit of CP-SAT deterministic time (one 'deterministic "
        "second'), ns.",
    )


class Hardware(_Strict):
    """A tile-spatial accelerator: a W×H mesh of identical tiles, a NoC and DRAM."""

    schema_: Literal["isosched.hardware/v1"] = Field(default="isosched.hardware/v1", alias="schema")
    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=4096)
    mesh: tuple[
        Annotated[int, Field(ge=1, le=MAX_SIDE)], Annotated[int, Field(ge=1, le=MAX_SIDE)]
    ] = Field(description=f"Mesh width W and height H in tiles (W·H at most {MAX_TILES}).")
    clock_ghz: Annotated[float, Field(ge=0.01, le=100)] = Field(description="Clock, GHz.")
    tile: Tile
    noc: Noc
    dram: Dram
    energy: Energy
    utilisation: Utilisation = Utilisation()
    dataflow: Dataflow = Dataflow()
    preemption: Preemption = Preemption()
    scheduler: Scheduler = Scheduler()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _tiles_within_limit(self) -> Hardware:
        if self.mesh[0] * self.mesh[1] > MAX_TILES:
            raise ValueError(
                f"a {self.mesh[0]}x{self.mesh[1]} mesh has {self.mesh[0] * self.mesh[1]} tiles; "
                f"at most {MAX_TILES}"
            )
        return self

    @property
    def width(self) -> int:
        """Mesh width W, tiles."""
        return self.mesh[0]

    @property
    def height(self) -> int:
        """Mesh height H, tiles."""
        return self.mesh[1]

    @property
    def tiles(self) -> int:
        """Number of tiles W·H."""
        return self.mesh[0] * self.mesh[1]

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per cycle."""
        return self.dram.bandwidth_gb_s / self.clock_ghz

    @property
    def peak_macs_per_cycle(self) -> int:
        """MACs per cycle of the whole chip."""
        return self.tiles * self.tile.macs_per_cycle

    def cycles_to_ms(self, cycles: float) -> float:
        """Convert cycles to milliseconds."""
        return cycles / (self.clock_ghz * 1e6)

    def cycles_to_us(self, cycles: float) -> float:
        """Convert cycles to microseconds."""
        return cycles / (self.clock_ghz * 1e3)
