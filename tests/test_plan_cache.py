"""The plan cache: memory, then disk, then the planner; keys by content; never an error.

Small graphs on edge-4x4 (a plan takes milliseconds); nothing here depends on timing.
"""

import dataclasses
import json
import multiprocessing
import os
import pickle
import sys
import warnings
from pathlib import Path

import pytest

import isosched.plan.cache as cache_mod
from isosched.cli import main
from isosched.io.graph_json import write_graph
from isosched.io.hardware_json import load_hardware
from isosched.plan import (
    PLAN_CACHE_VERSION,
    Plan,
    PlanCache,
    default_cache_dir,
    plan_key,
    plan_model,
    plan_to_doc,
)
from isosched.zoo import GraphBuilder

HW4 = load_hardware("edge-4x4")


def chain(n_convs=3, channels=16, name="tiny"):
    b = GraphBuilder(name)
    x = b.add("input", shape=[16, 32, 32], id="x")
    for i in range(n_convs):
        x = b.add("conv", [x], id=f"c{i}", out_channels=channels, kernel=3, padding=1)
        x = b.add("activation", [x], id=f"r{i}", kind="relu")
    return b.build()


G = chain()


WALL_FIELDS = {"elapsed_ms", "match_ms"}


def strip_wall(doc):
    """A plan document without its measured wall times."""
    if isinstance(doc, dict):
        return {k: strip_wall(v) for k, v in doc.items() if k not in WALL_FIELDS}
    return [strip_wall(v) for v in doc] if isinstance(doc, list) else doc


def same_plan(a: Plan, b: Plan) -> bool:
    """Equal apart from wall times."""
    return bool(
        strip_wall(plan_to_doc(a, library=True)) == strip_wall(plan_to_doc(b, library=True))
    )


def files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


# --- keys ------------------------------------------------------------------------------------


def test_key_is_stable_and_fills_in_defaults():
    key = plan_key(G, HW4)
    assert len(key) == 64 and int(key, 16) >= 0
    assert plan_key(chain(), HW4) == key  # content, not identity
    assert plan_key(G, HW4, hops=2, seed=0, match_nodes=20_000) == key  # the defaults
    # wall-clock safety nets do not change a plan (one they cut short is not cached)
    assert plan_key(G, HW4, ilp_time_limit_s=1.0, match_budget_ms=10.0) == key
    assert plan_key(G, HW4, hops=3) != key
    assert plan_key(G, HW4, ilp_dtime_limit=0.5) != key
    assert plan_key(G, HW4, seed=1) != key
    with pytest.raises(TypeError):
        plan_key(G, HW4, no_such_option=1)


def test_different_hardware_or_graph_gives_a_different_key():
    key = plan_key(G, HW4)
    assert plan_key(G, load_hardware("edge-8x8")) != key
    tweaked = HW4.model_copy(update={"dram": HW4.dram.model_copy(update={"bandwidth_gb_s": 1.0})})
    assert plan_key(G, tweaked) != key
    # what a decision costs the simulator is not the plan's business
    recalibrated = HW4.model_copy(
        update={"scheduler": HW4.scheduler.model_copy(update={"match_node_ns": 1.0})}
    )
    assert plan_key(G, recalibrated) == key
    assert plan_key(chain(channels=32), HW4) != key  # a parameter
    assert plan_key(chain(n_convs=4), HW4) != key  # a layer
    assert plan_key(chain(name="other"), HW4) != key  # the name is in the plan
    b = GraphBuilder("tiny")  # same layers, one edge moved
    x = b.add("input", shape=[16, 32, 32], id="x")
    c0 = b.add("conv", [x], id="c0", out_channels=16, kernel=3, padding=1)
    r0 = b.add("activation", [c0], id="r0", kind="relu")
    c1 = b.add("conv", [r0], id="c1", out_channels=16, kernel=3, padding=1)
    r1 = b.add("activation", [c1], id="r1", kind="relu")
    c2 = b.add("conv", [r0], id="c2", out_channels=16, kernel=3, padding=1)
    b.add("activation", [c2], id="r2", kind="relu")
    _ = r1
    assert plan_key(b.build(), HW4) != key


def test_key_covers_the_code_version(monkeypatch):
    key = plan_key(G, HW4)
    monkeypatch.setattr(cache_mod, "PLAN_CACHE_VERSION", PLAN_CACHE_VERSION + 1)
    assert plan_key(G, HW4) != key
    monkeypatch.undo()
    monkeypatch.setattr("isosched.__version__", "999.0")
    assert plan_key(G, HW4) != key


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ISOSCHED_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("ISOSCHED_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "isosched"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "isosched"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "isosched"
    monkeypatch.setenv("ISOSCHED_CACHE_DIR", str(tmp_path / "env"))
    assert PlanCache().directory == tmp_path / "env"


# --- lookups ---------------------------------------------------------------------------------


def test_second_call_hits_memory(tmp_path):
    cache = PlanCache(tmp_path)
    first = cache.plan(G, HW4)
    second = cache.plan(G, HW4, hops=2)  # the same key
    assert second is first
    assert (cache.hits, cache.disk_hits, cache.misses) == (1, 0, 1)
    cache.plan(G, HW4, hops=3)
    assert cache.misses == 2


def test_fresh_cache_hits_disk(tmp_path):
    planned = PlanCache(tmp_path).plan(G, HW4)
    key = plan_key(G, HW4)
    path = tmp_path / "plans" / key[:2] / f"{key}.pkl"
    assert files(tmp_path) == [path]
    assert path.stat().st_mode & 0o777 == 0o600  # a pickle runs code: its owner's only
    fresh = PlanCache(tmp_path)
    assert fresh.path(key) == path
    messages: list[str] = []
    got = fresh.plan(G, HW4, progress=messages.append)
    assert (fresh.hits, fresh.disk_hits, fresh.misses) == (0, 1, 0)
    assert got.latency_ms == planned.latency_ms and got.energy_mj == planned.energy_mj
    assert len(got.segments) == len(planned.segments)
    assert same_plan(got, planned)
    assert got.hw == HW4 and got.model == G.name
    assert len(messages) == 1 and "plan cache" in messages[0]
    assert fresh.plan(G, HW4) is got  # now in memory
    assert fresh.hits == 1


def test_memory_only_cache_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ISOSCHED_CACHE_DIR", str(tmp_path))
    cache = PlanCache(disk=False)
    cache.plan(G, HW4)
    cache.plan(G, HW4)
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.directory is None and files(tmp_path) == []


def _other_key_payload(plan):
    return pickle.dumps({"format": "isosched.plan-cache/1", "key": "0" * 64, "plan": plan})


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda good: good[: len(good) // 2],  # truncated
        lambda good: b"",  # empty
        lambda good: b"not a pickle at all",
        lambda good: pickle.dumps({"format": "isosched.plan-cache/1", "plan": 42}),  # wrong type
        lambda good: pickle.dumps(["a", "list"]),
        lambda good: _other_key_payload(pickle.loads(good)["plan"]),  # another key's file
    ],
    ids=["truncated", "empty", "garbage", "wrong-type", "list", "other-key"],
)
def test_corrupt_file_is_replanned_and_overwritten(tmp_path, corrupt):
    planned = PlanCache(tmp_path).plan(G, HW4)
    (path,) = files(tmp_path)
    good = path.read_bytes()
    path.write_bytes(corrupt(good))
    cache = PlanCache(tmp_path)
    got = cache.plan(G, HW4)
    assert (cache.disk_hits, cache.misses) == (0, 1)
    assert same_plan(got, planned)
    again = PlanCache(tmp_path)  # overwritten with a good file
    again.plan(G, HW4)
    assert (again.disk_hits, again.misses) == (1, 0)
    assert files(tmp_path) == [path]  # no temporary files left


def test_unreadable_entry_is_a_miss(tmp_path):
    PlanCache(tmp_path).plan(G, HW4)
    (path,) = files(tmp_path)
    path.unlink()
    path.mkdir()  # reading a directory fails with an OSError
    cache = PlanCache(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = cache.plan(G, HW4)
    assert got.latency_ms > 0 and cache.misses == 1
    assert len(caught) == 1  # the write failed too: one warning


def test_unwritable_directory_still_plans(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    cache = PlanCache(blocker / "cache")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = cache.plan(G, HW4)
        cache.plan(chain(n_convs=2), HW4)
        again = cache.plan(G, HW4)
    assert first.latency_ms > 0 and again is first  # memory still works
    assert (cache.hits, cache.misses) == (1, 2)
    assert len(caught) == 1 and issubclass(caught[0].category, RuntimeWarning)
    assert "memory only" in str(caught[0].message)
    assert blocker.read_text().startswith("a file")


def test_wall_limited_plans_are_not_cached(tmp_path, monkeypatch):
    def cut_short(*args, **kwargs):
        plan = plan_model(*args, **kwargs)
        seg = plan.segments[0]
        alloc = dataclasses.replace(seg.allocation, wall_limited=True)
        segs = (dataclasses.replace(seg, allocation=alloc), *plan.segments[1:])
        return dataclasses.replace(plan, segments=segs)

    monkeypatch.setattr(cache_mod, "plan_model", cut_short)
    cache = PlanCache(tmp_path)
    got = cache.plan(G, HW4)
    assert got.wall_limited
    cache.plan(G, HW4)
    assert (cache.hits, cache.misses) == (0, 2)
    assert files(tmp_path) == []


def _plan_in_child(directory, barrier):
    """Plan once beside three other processes: planned here, or read whole from another's
    finished file (which of the two depends on timing; a torn or half-written file would
    raise or fail the checks below)."""
    barrier.wait(timeout=60)
    cache = PlanCache(Path(directory))
    got = cache.plan(G, HW4)
    assert got.model == G.name
    sys.exit(0 if cache.misses + cache.disk_hits == 1 else 3)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_concurrent_writers_of_one_key(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_plan_in_child, args=(str(tmp_path), barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    key = plan_key(G, HW4)
    assert files(tmp_path) == [tmp_path / "plans" / key[:2] / f"{key}.pkl"]
    cache = PlanCache(tmp_path)
    got = cache.plan(G, HW4)
    assert cache.disk_hits == 1
    assert same_plan(got, plan_model(G, HW4))


# --- command line ------------------------------------------------------------------------------


def run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["isosched", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_plan_uses_the_cache(tmp_path, monkeypatch, capsys):
    graph_file = tmp_path / "tiny.json"
    write_graph(G, graph_file)
    cache_dir = tmp_path / "cache"
    args = ["plan", str(graph_file), "--hw", "edge-4x4", "--json", "--cache-dir", str(cache_dir)]
    code, first, err = run(monkeypatch, capsys, *args)
    assert code == 0, err
    assert "segment 0 [1/" in err and len(files(cache_dir)) == 1
    code, second, err = run(monkeypatch, capsys, *args)
    assert code == 0 and "plan cache" in err and "segment 0 [1/" not in err
    assert second == first  # the stored plan, wall times and all
    doc = json.loads(first)
    assert doc["schema"] == "isosched.plan/v1" and doc["wall_limited"] is False
    # --no-cache plans again and writes nothing; the result is the same apart from wall times
    monkeypatch.setenv("ISOSCHED_CACHE_DIR", str(tmp_path / "default"))
    no_cache = ["plan", str(graph_file), "--hw", "edge-4x4", "--json", "--no-cache"]
    code, third, err = run(monkeypatch, capsys, *no_cache)
    assert code == 0 and "segment 0 [1/" in err
    assert not (tmp_path / "default").exists()
    assert strip_wall(json.loads(third)) == strip_wall(doc)


@pytest.mark.parametrize("command", [["plan", "resnet50"], ["replay", "t.jsonl"]])
def test_cli_cache_options_exclude_each_other(tmp_path, monkeypatch, capsys, command):
    code, out, err = run(monkeypatch, capsys, *command, "--no-cache", "--cache-dir", str(tmp_path))
    assert code == 2 and out == "" and "exclude each other" in err


def test_cli_plan_unwritable_cache_dir_still_plans(tmp_path, monkeypatch, capsys):
    graph_file = tmp_path / "tiny.json"
    write_graph(G, graph_file)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        args = ["plan", str(graph_file), "--hw", "edge-4x4", "--json"]
        code, out, err = run(monkeypatch, capsys, *args, "--cache-dir", str(blocker / "c"))
    assert code == 0, err
    assert json.loads(out)["schema"] == "isosched.plan/v1"
    assert os.path.isfile(blocker)
    # the warning is one line, as the CLI's other messages (no source path, no source line)
    (warned,) = [ln for ln in err.splitlines() if "plan cache" in ln]
    assert warned.startswith("isosched: warning: plan cache: cannot write to ")
    assert "cache.py" not in err
