"""What the dashboard shows, as plain data: replay details and Vega-Lite chart specifications.

Everything here is pure Python (no web framework): the service renders the specs, and tests check
them without a browser.
"""

from isosched.report.charts import (
    critical_by_stream,
    energy_breakdown,
    job_gantt,
    latency_cdf,
    layer_group,
    plan_mesh,
    sweep_capacities,
    sweep_lines,
    sweep_points,
)
from isosched.report.details import chip_window, gantt_window, run_details
from isosched.report.perfetto import perfetto_trace

__all__ = [
    "chip_window",
    "critical_by_stream",
    "energy_breakdown",
    "gantt_window",
    "job_gantt",
    "latency_cdf",
    "layer_group",
    "perfetto_trace",
    "plan_mesh",
    "run_details",
    "sweep_capacities",
    "sweep_lines",
    "sweep_points",
]
