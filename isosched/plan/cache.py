"""Plans cached in memory and on disk, keyed by content (DESIGN.md §6).

A plan is a pure function of the model's content, the chip's content, the planner's arguments
and the code (DESIGN.md §10: no wall-clock limit decides a result), so it is computed once and
looked up afterwards: in this process's memory first, then on disk, and only then planned.

Layout on disk: one pickle per key, ``<dir>/plans/<key[:2]>/<key>.pkl``, readable by its owner
only (mode 0600). Writers write a temporary file of their own in the same directory and rename
it over the target (``os.replace``, atomic on POSIX and Windows), so concurrent writers of one
key each leave a complete file and readers never see half of one. A file that cannot be read
or is not what it should be (truncated, not a pickle, another key, another type) is a miss and
is overwritten by the next write. A directory that cannot be created or written turns the cache
into a memory-only one with one warning.

Pickles run code when loaded: the cache directory must be writable only by people you trust
(by default it is in your own home directory). See docs/plan-cache.md.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import pickle
import sys
import warnings
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import isosched
from isosched.graph.model import Graph
from isosched.hw.model import Hardware
from isosched.io.files import written_whole
from isosched.io.graph_json import graph_to_dict
from isosched.plan.planner import Plan, plan_model

__all__ = ["PLAN_CACHE_VERSION", "PlanCache", "default_cache_dir", "plan_key"]

#: Bump whenever the planner's output changes for the same inputs (cost model, ILP, LCS,
#: matcher, the Plan dataclasses): every cached plan is then planned again.
PLAN_CACHE_VERSION = 2

#: Marker of a cache file's payload.
_FORMAT = "isosched.plan-cache/1"

#: ``plan_model`` arguments that are not part of a plan's identity: wall-clock safety nets
#: (a plan they cut short is never cached) and the progress callback.
_NOT_IN_KEY = frozenset({"progress", "ilp_time_limit_s", "match_budget_ms"})

#: Arguments added to ``plan_model`` after plans were first cached, left out of the key at their
#: default (which plans as before), so that existing cache entries stay valid.
_KEY_ONLY_OFF_DEFAULT = {"lcs": True}

Progress = Callable[[str], None]


@functools.cache
def _ortools_version() -> str:
    try:
        return importlib.metadata.version("ortools")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored copies
        return "unknown"


def default_cache_dir() -> Path:
    """Where plans are cached by default.

    ``$ISOSCHED_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/isosched`` (when ``XDG_CACHE_HOME`` is
    an absolute path), else ``~/.cache/isosched``.
    """
    env = os.environ.get("ISOSCHED_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "isosched"
    return Path.home() / ".cache" / "isosched"


def _canonical(value: Any) -> Any:
    """JSON ``default`` hook: the values plan arguments and layer parameters may hold."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, mode="json")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot key a plan on a {type(value).__name__} value")


def _graph_doc(graph: Graph) -> dict[str, Any]:
    """The graph's content as a JSON-able document.

    Its ``isosched.graph/v1`` document without ``meta`` (provenance that no plan reads), plus
    every layer's derived shape, work and sizes.
    """
    doc = graph_to_dict(graph)
    doc.pop("meta", None)
    doc["derived"] = [
        [
            list(lay.output_shape),
            lay.macs,
            lay.vector_ops,
            lay.weight_bytes,
            lay.input_bytes,
            lay.output_bytes,
        ]
        for lay in graph.layers
    ]
    return doc


def graph_digest(graph: Graph) -> str:
    """SHA-256 of the graph's content as the plan key reads it (:func:`plan_key`)."""
    text = json.dumps(
        _graph_doc(graph),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=_canonical,
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _plan_arguments(plan_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``plan_model``'s keyword arguments that make a plan's identity, defaults filled in.

    So ``hops=2`` and no ``hops`` give the same key; the wall-clock safety nets and
    ``progress`` are left out, and so are arguments added later while at their default
    (``lcs=True``).

    Raises
    ------
    TypeError
        On an argument ``plan_model`` does not take.
    """
    sig = inspect.signature(plan_model)
    bound = sig.bind_partial(**plan_kwargs)
    bound.apply_defaults()
    return {
        k: v
        for k, v in bound.arguments.items()
        if k not in _NOT_IN_KEY
        and k not in ("graph", "hw")
        and not (k in _KEY_ONLY_OFF_DEFAULT and v == _KEY_ONLY_OFF_DEFAULT[k])
    }


def plan_key(graph: Graph, hw: Hardware, **plan_kwargs: Any) -> str:
    """SHA-256 (hex) of everything a plan depends on.

    The key covers the graph's content (name, data type, layers with their operators, inputs,
    parameters and derived shapes and sizes), the hardware's JSON document (without its
    ``scheduler`` section, which no plan reads), ``plan_model``'s
    arguments (defaults filled in; the wall-clock safety nets ``ilp_time_limit_s`` and
    ``match_budget_ms`` and ``progress`` are left out), ``isosched.__version__``,
    :data:`PLAN_CACHE_VERSION`, the OR-Tools version and the Python version (major.minor).

    Raises
    ------
    TypeError
        On an argument ``plan_model`` does not take, or a value that has no canonical form.
    """
    doc = {
        "cache": PLAN_CACHE_VERSION,
        "isosched": isosched.__version__,
        "ortools": _ortools_version(),
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "graph": _graph_doc(graph),
        # The scheduler section prices the simulator's decisions; no plan reads it, so a
        # recalibration leaves every cached plan valid.
        "hw": hw.model_dump(by_alias=True, mode="json", exclude={"scheduler"}),
        "plan": _plan_arguments(plan_kwargs),
    }
    text = json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_canonical
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class PlanCache:
    """Plans looked up in memory, then on disk, and planned (then stored) only when missing.

    Parameters
    ----------
    directory : Path, optional
        Cache directory; ``None`` means :func:`default_cache_dir`. Plans go under
        ``<directory>/plans/``.
    disk : bool
        ``False`` keeps plans in memory only.

    Attributes
    ----------
    hits : int
        Lookups answered from memory.
    disk_hits : int
        Lookups answered from disk.
    misses : int
        Lookups that planned.

    Notes
    -----
    A plan that a wall-clock safety net cut short (``Plan.wall_limited``) is returned but never
    cached: it is not the reproducible plan of its inputs. Returned plans are shared between
    callers: treat them as read-only.
    """

    def __init__(self, directory: Path | None = None, *, disk: bool = True) -> None:
        self.disk = disk
        self.directory: Path | None = None
        if disk:
            try:
                self.directory = Path(directory) if directory is not None else default_cache_dir()
            except (RuntimeError, OSError) as exc:  # no home directory
                self._warn(f"no cache directory ({exc})")
        self._writable = self.directory is not None
        self._memory: dict[str, Plan] = {}
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        where = str(self.directory) if self.directory is not None else "memory only"
        return (
            f"PlanCache({where!s}, hits={self.hits}, disk_hits={self.disk_hits}, "
            f"misses={self.misses})"
        )

    @staticmethod
    def _warn(why: str) -> None:
        warnings.warn(f"plan cache: {why}; caching in memory only", RuntimeWarning, stacklevel=3)

    def path(self, key: str) -> Path | None:
        """The file of ``key`` (``None`` for a memory-only cache)."""
        if self.directory is None:
            return None
        return self.directory / "plans" / key[:2] / f"{key}.pkl"

    def plan(
        self,
        graph: Graph,
        hw: Hardware,
        progress: Progress | None = None,
        **plan_kwargs: Any,
    ) -> Plan:
        """The plan of ``graph`` on ``hw``: from memory, from disk, or ``plan_model(...)``.

        ``plan_kwargs`` are :func:`~isosched.plan.plan_model`'s keyword arguments.
        ``progress`` is called with one line on a hit, or passed on to the planner on a miss.

        Raises
        ------
        TypeError
            On an argument ``plan_model`` does not take.
        """
        key = plan_key(graph, hw, **plan_kwargs)
        got = self._memory.get(key)
        if got is not None:
            self.hits += 1
            if progress is not None:
                progress(f"plan cache: {graph.name} on {hw.name} from memory")
            return got
        got = self._load(key)
        if got is not None:
            self.disk_hits += 1
            self._memory[key] = got
            if progress is not None:
                progress(f"plan cache: {graph.name} on {hw.name} from {self.path(key)}")
            return got
        self.misses += 1
        plan = plan_model(graph, hw, progress=progress, **plan_kwargs)
        if not plan.wall_limited:
            self._memory[key] = plan
            self._store(key, plan)
        return plan

    def _load(self, key: str) -> Plan | None:
        """The plan stored under ``key``, or ``None`` if absent, unreadable or not a plan."""
        path = self.path(key)
        if path is None:
            return None
        try:
            with path.open("rb") as fh:
                payload = pickle.load(fh)  # the cache directory is trusted
        except Exception:  # any unreadable or corrupt file is a miss
            return None
        if (
            isinstance(payload, dict)
            and payload.get("format") == _FORMAT
            and payload.get("key") == key
            and isinstance(payload.get("plan"), Plan)
        ):
            plan: Plan = payload["plan"]
            return plan
        return None

    def _store(self, key: str, plan: Plan) -> None:
        """Write ``plan`` under ``key`` atomically; on failure warn once and stop writing."""
        path = self.path(key)
        if path is None or not self._writable:
            return
        payload = {"format": _FORMAT, "key": key, "plan": plan}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with written_whole(path, durable=True, mode=0o600) as tmp, tmp.open("wb") as fh:
                pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # caching must never break planning
            self._writable = False
            self._warn(f"cannot write to {self.directory} ({type(exc).__name__}: {exc})")
