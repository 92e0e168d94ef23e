"""The mypyc build of the simulator: byte-identical to the pure-Python sources, and never stale.

The pure sources are the reference: a contended trace is replayed under every policy in two
processes, one forced to the sources (``ISOSCHED_PURE_PYTHON=1``), and the job records and
metrics must be identical. In CI the build must exist (``make test`` makes it), so that the
comparison is never between two pure runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from isosched import native

REPLAY = textwrap.dedent(
    """
    import hashlib, json, sys
    from isosched import native
    from isosched.io.hardware_json import load_hardware
    from isosched.io.model_source import load_models
    from isosched.io.scenario_library import load_scenario
    from isosched.plan import PlanCache
    from isosched.sim import POLICY_NAMES, job_record
    from isosched.sim.replay import replay
    from isosched.sim.sweep import plan_book
    from isosched.trace import generate_trace

    out = {"compiled": native.compiled_modules(), "runs": {}}
    points = (("critical_burst", "edge-4x4", 2.0), ("ad_urban", "edge-4x4", 1.75))
    for name, hw_name, scale in points:
        sc, hw = load_scenario(name), load_hardware(hw_name)
        # a quarter of the horizon: as contended (the scale sets that), under half the time
        sc = sc.model_copy(update={"horizon_ms": sc.horizon_ms / 4})
        models = load_models(s.model for s in sc.streams)
        book = plan_book(hw, models, PlanCache(disk=False))
        trace = generate_trace(sc, seed=1, scale=scale)
        doc, runs = replay(trace, hw, list(POLICY_NAMES), plans=book)
        for p, m in doc["policies"].items():
            m = {k: v for k, v in m.items() if "wall" not in k}
            jobs = "\\n".join(json.dumps(job_record(j), sort_keys=True) for j in runs[p].jobs)
            out["runs"][f"{name}/{p}"] = [m, hashlib.sha256(jobs.encode()).hexdigest()]
    print(json.dumps(out, sort_keys=True))
    """
)


def _replay(pure: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    if pure:
        env[native.PURE_ENV] = "1"
    done = subprocess.run(
        [sys.executable, "-c", REPLAY], env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_compiled_replays_are_byte_identical_to_the_pure_sources():
    compiled = _replay(pure=False)
    if not compiled["compiled"]:
        if os.environ.get("CI"):
            pytest.fail(
                "no mypyc build in CI: `make test` builds it (python -m isosched.native_build)"
            )
        pytest.skip("no mypyc build here (python -m isosched.native_build)")
    assert compiled["compiled"] == list(native.NATIVE_MODULES)
    pure = _replay(pure=True)
    assert pure["compiled"] == []
    assert set(pure["runs"]) == set(compiled["runs"]) and len(pure["runs"]) >= 14
    for key, (metrics, jobs) in pure["runs"].items():
        assert compiled["runs"][key] == [metrics, jobs], key
    # the trace is contended: the policies differ, so identity is not trivial
    assert len({json.dumps(m, sort_keys=True) for m, _ in pure["runs"].values()}) > 7


def test_a_source_edited_after_the_build_runs_every_module_from_source(tmp_path, monkeypatch):
    record = tmp_path / "_native.json"
    sources = {m: native._digest(native.source_of(m)) for m in native.NATIVE_MODULES}
    files = ["isosched/native.py"]  # stands for the build's extension files (they exist)
    record.write_text(json.dumps({"sources": sources, "files": files}))
    monkeypatch.setattr(native, "_RECORD", record)
    assert native._built_from_current_sources()
    stale = {**sources, "isosched.sim.engine": "0" * 64}  # as if engine.py changed since
    record.write_text(json.dumps({"sources": stale, "files": files}))
    assert not native._built_from_current_sources()
    # a file of the build gone: the group runs from source rather than half compiled
    gone = ["isosched/native.py", "isosched/sim/engine.nonexistent.so"]
    record.write_text(json.dumps({"sources": sources, "files": gone}))
    assert not native._built_from_current_sources()
    record.write_text("{not json")
    assert not native._built_from_current_sources()
    record.unlink()
    assert not native._built_from_current_sources()


def test_the_source_finder_loads_py_files_of_the_group_only():
    finder = native._SourceFinder()
    spec = finder.find_spec("isosched.sim.engine", None)
    assert spec is not None and str(spec.origin).endswith("isosched/sim/engine.py")
    assert finder.find_spec("isosched.sim.policies.podalloc", None) is None  # numba kernels
    assert finder.find_spec("json", None) is None


def test_pure_python_is_forced_by_the_environment():
    env = {**os.environ, native.PURE_ENV: "1"}
    code = "from isosched import native; print(json.dumps(native.compiled_modules()))"
    done = subprocess.run(
        [sys.executable, "-c", "import json; " + code], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
