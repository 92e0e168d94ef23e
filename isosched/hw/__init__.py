"""Hardware description of a tile-spatial accelerator (``isosched.hardware/v1``)."""

from isosched.hw.model import (
    HARDWARE_SCHEMA,
    Dataflow,
    Dram,
    Energy,
    Hardware,
    Noc,
    Preemption,
    Scheduler,
    Tile,
    Utilisation,
)

__all__ = [
    "HARDWARE_SCHEMA",
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
