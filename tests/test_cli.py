"""The isosched command line: JSON on stdout, exit status 2 with one line on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from isosched.cli import main
from isosched.zoo import zoo_names


def run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["isosched", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_json(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "models", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    names = [r["name"] for r in rows]
    assert names[:4] == ["resnet50", "mobilenetv2", "googlenet", "yolov3"]
    assert len(rows) == len(zoo_names()) == 16
    assert set(rows[0]) == {"name", "layers", "edges", "macs", "params"}


def test_models_show_json_with_costs(monkeypatch, capsys):
    code, out, _ = run(
        monkeypatch,
        capsys,
        "models",
        "show",
        "resnet50",
        "--hw",
        "edge-8x8",
        "--tiles",
        "16",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["layer_count"] == len(doc["layers"])
    assert doc["macs"] == sum(layer["macs"] for layer in doc["layers"])
    first = doc["layers"][1]
    assert {"id", "op", "inputs", "macs", "weight_bytes", "output_bytes"} <= set(first)
    assert first["cost"]["tiles"] == 16
    assert first["cost"]["lts_us"] > 0 and first["cost"]["tss_us"] > 0


def test_models_show_table(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "models", "show", "mobilenetv2", "--hw", "edge-8x8")
    assert code == 0
    assert "LTS on 64 tiles of edge-8x8" in out


def test_models_show_graph_file(monkeypatch, capsys, tmp_path):
    path = tmp_path / "g.json"
    path.write_text(
        json.dumps(
            {
                "name": "g",
                "layers": [
                    {"id": "x", "op": "input", "shape": [4]},
                    {"id": "fc", "op": "linear", "inputs": ["x"], "out_features": 2},
                ],
            }
        )
    )
    code, out, _ = run(monkeypatch, capsys, "models", "show", str(path), "--json")
    assert code == 0
    assert json.loads(out)["macs"] == 8


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {
                "name": "g",
                "layers": [
                    {"id": "a", "op": "activation", "inputs": ["b"]},
                    {"id": "b", "op": "activation", "inputs": ["a"]},
                ],
            },
            "cycle",
        ),
        (
            {"name": "g", "layers": [{"id": "a", "op": "activation", "inputs": ["zz"]}]},
            "unknown layer 'zz'",
        ),
        ({"name": "g", "layers": [{"id": "a", "op": "input", "shape": [-1]}]}, "layer 'a'"),
        (
            {"name": "g", "layers": [{"id": "a", "op": "input", "shape": [10**6, 10**6, 10**3]}]},
            "exceeds the limit",
        ),
    ],
)
def test_bad_graph_exits_2_with_one_line(monkeypatch, capsys, tmp_path, doc, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    code, out, err = run(monkeypatch, capsys, "models", "show", str(path), "--json")
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ("hw", "show", "edge-9x9"),
        ("models", "show", "resnet51"),
        ("models", "show", "resnet50", "--hw", "nope"),
        ("models", "show", "resnet50", "--hw", "edge-4x4", "--tiles", "17"),
        ("models", "show", "resnet50", "--tiles", "4"),  # tiles of no chip
    ],
)
def test_unknown_names_exit_2(monkeypatch, capsys, args):
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("isosched: error:") and len(err.strip().splitlines()) == 1


def test_missing_files_are_named_in_one_line(monkeypatch, capsys, tmp_path):
    """A file that cannot be opened is named with the system's reason, not an exception name;
    ``replay --jobs-out`` checks its directory before it replays."""
    import importlib

    replay_module = importlib.import_module("isosched.sim.replay")
    code, out, err = run(monkeypatch, capsys, "jobs", str(tmp_path / "nofile.jsonl"))
    assert code == 2 and out == ""
    missing = str(tmp_path / "nofile.jsonl")
    assert err == f"isosched: error: cannot use {missing!r}: No such file or directory\n"

    def no_replay(*args, **kwargs):
        raise AssertionError("replayed before checking --jobs-out")

    monkeypatch.setattr(replay_module, "replay", no_replay)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    trace = Path(__file__).parents[1] / "traces" / "ad_urban.s7.jsonl"
    args = ("replay", str(trace), "--policy", "fcfs", "--jobs-out", str(blocker / "out"))
    code, out, err = run(monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith(f"isosched: error: cannot use {str(blocker / 'out')!r}: "), err


GOOD_RECORD = {
    "job": "a#0",
    "stream": "a",
    "release_us": 0,
    "start_us": 10,
    "finish_us": 30,
    "met": True,
    "intervals": [{"tiles": [[0, 0]]}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"intervals": "x"}, "'intervals' must be"),
        ({"release_us": None}, "'release_us' must be"),
        ({"finish_us": -5}, "'finish_us' must be"),
        ({"met": "yes"}, "'met' must be"),
        ({"energy_uj": float("nan")}, "not JSON"),
    ],
)
def test_jobs_refuses_malformed_records_in_one_line(monkeypatch, capsys, tmp_path, change, message):
    """Found by review: tracebacks on wrong types, NaN and negative times in the readings."""
    path = tmp_path / "p.jobs.jsonl"
    path.write_text(json.dumps(GOOD_RECORD) + "\n" + json.dumps({**GOOD_RECORD, **change}) + "\n")
    code, out, err = run(monkeypatch, capsys, "jobs", str(path), "--json")
    assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1, err
    path.write_text(json.dumps(GOOD_RECORD) + "\n")
    code, out, _ = run(monkeypatch, capsys, "jobs", str(path), "--json")
    assert code == 0 and json.loads(out)["files"][str(path)]["a"]["run_p50_ms"] == 0.02


def test_replay_checks_its_perfetto_file_before_replaying(monkeypatch, capsys, tmp_path):
    import importlib

    replay_module = importlib.import_module("isosched.sim.replay")

    def no_replay(*args, **kwargs):
        raise AssertionError("replayed before checking --perfetto")

    monkeypatch.setattr(replay_module, "replay", no_replay)
    trace = Path(__file__).parents[1] / "traces" / "ad_urban.s7.jsonl"
    for where in (tmp_path, tmp_path / "missing" / "p.json"):
        args = ("replay", str(trace), "--policy", "fcfs", "--perfetto", str(where))
        code, out, err = run(monkeypatch, capsys, *args)
        assert code == 2 and out == "" and "--perfetto" in err, err


def test_models_list_columns_line_up(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "models", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1 + len(zoo_names())
    assert len({len(line) for line in lines}) == 1, out  # right-aligned numbers, one width


def test_hw_show_and_schema(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "hw", "show", "edge-8x8", "--json")
    assert code == 0 and json.loads(out)["mesh"] == [8, 8]
    code, out, _ = run(monkeypatch, capsys, "schema", "graph")
    assert code == 0 and "layers" in json.loads(out)["properties"]
    code, out, _ = run(monkeypatch, capsys, "schema", "hardware")
    assert code == 0 and "mesh" in json.loads(out)["properties"]
    code, out, _ = run(monkeypatch, capsys, "hw", "list", "--json")
    assert code == 0 and len(json.loads(out)) == 4


def test_console_script_runs_as_a_process():
    proc = subprocess.run(
        [sys.executable, "-m", "isosched", "hw", "show", "no-such-chip"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "unknown hardware" in proc.stderr


HEAVY = ("ortools", "numba", "scipy", "pandas", "isosched.plan", "isosched.sim", "isosched.match")


@pytest.mark.parametrize(
    ("argv", "heavy"),
    [
        (["--help"], HEAVY),
        (["plan", "{bad}", "--hw", "edge-4x4"], ("ortools", "pandas", "isosched.plan")),
    ],
    ids=["help", "plan-bad-file"],
)
def test_start_up_imports_no_solver_or_simulator(tmp_path, argv, heavy):
    """Start-up stays light (docs/performance.md, CLI start-up): ``isosched --help`` imports none
    of the heavy libraries, and ``plan`` refuses a bad file before it imports the planner."""
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    argv = [a.replace("{bad}", str(bad)) for a in argv]
    code = (
        "import sys\n"
        "from isosched.cli import main\n"
        f"sys.argv = ['isosched', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {list(heavy)!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr


def test_schema_tilegraph_validates_the_shipped_example(monkeypatch, capsys):
    """The README's match example: its file follows `isosched schema tilegraph` and is placed."""
    import jsonschema  # type: ignore[import-untyped]

    from isosched.tilegraph import TileGraph, TileGraphError

    code, out, _ = run(monkeypatch, capsys, "schema", "tilegraph")
    assert code == 0
    schema = json.loads(out)
    root = Path(__file__).resolve().parent.parent
    example_file = root / "docs" / "examples" / "tile_graph.json"
    example = json.loads(example_file.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(example)
    assert len(TileGraph.from_doc(example)) == len(example["vertices"])
    for bad in (
        {"vertices": [{"id": ""}]},
        {"vertices": [{"id": "a"}], "edges": [{"src": "a", "dst": "a", "bytes": -1}]},
        {"vertices": [{"id": "a", "cycles": "x"}]},
    ):
        assert not jsonschema.Draft202012Validator(schema).is_valid(bad)
        with pytest.raises(TileGraphError):
            TileGraph.from_doc(bad)
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "match docs/examples/tile_graph.json" in readme
    args = ["match", str(example_file), "--mesh", "8x8", "--hops", "2", "--json"]
    code, out, _ = run(monkeypatch, capsys, *args)
    assert code == 0 and json.loads(out)["found"] is True
    # the busy-chip example: rows 3-7 blocked, rows 0-1 held, row 2 free (8 tiles for 10)
    occupied = root / "docs" / "examples" / "occupied.json"
    assert f"--blocked docs/examples/{occupied.name} --max-nodes 2000" in readme
    busy = [*args[:-1], "--engine", "cp+repair", "--blocked", str(occupied), "--max-nodes", "2000"]
    code, out, _ = run(monkeypatch, capsys, *busy, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["found"] and doc["victims"] and doc["preemption_cost"] > 0


def test_help_has_no_type_placeholders_for_flags(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "replay", "--help")
    assert code == 0
    assert "<bool>" not in out
    assert "--perfetto" in out and "-v, --verbose" in out


def test_make_run_takes_a_port(tmp_path):
    """`make run PORT=...` serves on that port (dry run: nothing is installed or started)."""
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parent.parent
    venv = tmp_path / "venv"
    out = subprocess.run(
        ["make", "-n", "run", "PORT=8123", f"VENV={venv}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{venv}/bin/isosched serve --host 127.0.0.1 --port 8123 --demo" in out


def test_replay_table_fits_long_policy_names(capsys):
    from isosched.cli.replay import _table

    row = {
        "satisfaction": 1.0,
        "critical_satisfaction": 1.0,
        "lbt_per_s": 10.0,
        "p99_latency_ms": 1.5,
        "energy_mj": 2.0,
        "inferences_per_j": 100.0,
        "preemptions": 0,
        "library_hits": 1,
        "online_matches": 0,
        "decision_charged_p99_ms": 0.002,
    }
    _table({"policies": {"fcfs": row, "isosched-no-preempt": row}})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1, lines


def test_cli_serve_refuses_a_busy_port_in_one_line(monkeypatch, capsys):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code, out, err = run(monkeypatch, capsys, "serve", "--port", str(port))
    assert code == 2 and out == ""
    assert err == (
        f"isosched: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another server there? --port chooses another)\n"
    )


def test_trace_show_prints_the_span_it_promises(monkeypatch, capsys):
    trace = Path(__file__).resolve().parents[1] / "traces" / "ad_urban.s7.jsonl"
    code, out, _ = run(monkeypatch, capsys, "trace", "show", str(trace))
    assert code == 0
    assert out.splitlines()[0] == (
        "ad_urban (seed 7): 1490 jobs, 1000 critical, releases 0.522–9973.82 ms"
    )
