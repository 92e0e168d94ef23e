"""Sweep points cached on disk (resumable result regeneration), keyed by content and code.

One JSON file per point, ``<dir>/points/<key[:2]>/<key>.json``, written to a temporary file and
renamed over the target (atomic). The key hashes the scenario, the hardware, the policy, the
scale, the seed, the content of the scenario's models (when the cache is given them: a model
named by a file path may be edited), the versions of Python (major.minor) and of the libraries a
replay computes with (OR-Tools, NumPy, numba), and the source of the ``isosched`` package
(:func:`code_fingerprint`): any code change makes every point new. A file that cannot be read
is a miss.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import isosched
from isosched.graph.model import Graph
from isosched.io.files import written_whole
from isosched.plan.cache import graph_digest
from isosched.sim.sweep import Point

__all__ = ["PointCache", "code_fingerprint", "point_key"]


#: Packages that only present results (command line, tables, charts): not in the fingerprint.
PRESENTATION = ("cli", "report")


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 of the ``.py`` files of the ``isosched`` package that can change a result.

    Paths and contents, sorted; the presentation packages (:data:`PRESENTATION`) are left out.
    """
    root = Path(isosched.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] in PRESENTATION:
            continue
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.cache
def environment() -> dict[str, str]:
    """Versions of Python (major.minor) and of the libraries a replay computes with."""
    out = {"python": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    for package in ("ortools", "numpy", "numba"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored copies
            out[package] = "unknown"
    return out


def point_key(point: Point, model_digests: Mapping[str, str] | None = None) -> str:
    """Content key of one sweep point.

    Parameters
    ----------
    point : Point
        The scenario, hardware, policy, scale and seed.
    model_digests : mapping of str to str, optional
        :func:`~isosched.plan.cache.graph_digest` of every model the scenario names; without
        them the key stands for the models the names meant when the point was stored.
    """
    scenario, hw, policy, scale, seed = point
    doc = {
        "scenario": scenario.model_dump(mode="json", by_alias=True),
        "hw": hw.model_dump(mode="json"),
        "policy": policy,
        "scale": repr(float(scale)),
        "seed": seed,
        "models": dict(sorted((model_digests or {}).items())),
        "environment": environment(),
        "code": code_fingerprint(),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class PointCache:
    """A :class:`~isosched.sim.sweep.PointStore` in a directory.

    Parameters
    ----------
    directory : Path
        Where the ``points/`` tree lives (created on first write).
    models : mapping of str to Graph, optional
        The graphs the scenarios' model names stand for; their content is part of every key.

    Attributes
    ----------
    hits, stored : int
        Points found, and points computed and stored, through this object.
    """

    def __init__(self, directory: Path, models: Mapping[str, Graph] | None = None) -> None:
        self.directory = Path(directory) / "points"
        self.model_digests = {n: graph_digest(g) for n, g in (models or {}).items()}
        self.hits = 0
        self.stored = 0

    def _path(self, point: Point) -> Path:
        names = {s.model for s in point[0].streams}
        key = point_key(point, {n: d for n, d in self.model_digests.items() if n in names})
        return self.directory / key[:2] / f"{key}.json"

    def get(self, point: Point) -> dict[str, Any] | None:
        """The stored result of ``point``, or ``None``."""
        try:
            doc = json.loads(self._path(point).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict):
            return None
        self.hits += 1
        return doc

    def put(self, point: Point, result: dict[str, Any]) -> None:
        """Store the result of ``point`` (atomically)."""
        path = self._path(point)
        path.parent.mkdir(parents=True, exist_ok=True)
        with written_whole(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
            json.dump(result, fh, separators=(",", ":"))
        self.stored += 1
