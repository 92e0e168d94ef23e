"""isosched: preemptive multi-DNN scheduling for tile-spatial accelerators (IsoSched)."""

__version__ = "0.1.0"
