"""Shipped scenarios (``traces/scenarios/``), named on the command line like files."""

from __future__ import annotations

from pathlib import Path

from isosched.io.trace_jsonl import read_scenario
from isosched.trace.scenario import Scenario, ScenarioError

__all__ = ["SCENARIO_DIR", "load_scenario", "shipped_scenarios"]

#: ``traces/scenarios`` of this checkout.
SCENARIO_DIR = Path(__file__).resolve().parents[2] / "traces" / "scenarios"


def shipped_scenarios(directory: Path = SCENARIO_DIR) -> dict[str, Path]:
    """Shipped scenario names and their files, sorted by name."""
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.glob("*.json"))}


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario from a file, or a shipped scenario by name (a file wins over a name).

    Raises
    ------
    ScenarioError
        Neither an existing file nor a shipped name (the names are listed), or invalid content.
    """
    path = Path(name_or_path)
    if path.is_file():
        return read_scenario(path)
    files = shipped_scenarios()
    if str(name_or_path) in files:
        return read_scenario(files[str(name_or_path)])
    raise ScenarioError(
        f"no scenario file {str(name_or_path)!r} and no shipped scenario of that name; "
        f"shipped: {', '.join(files) or 'none'}"
    )
