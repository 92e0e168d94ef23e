"""Every command refuses bad input with exit status 2 and one line on standard error.

Malformed JSON or ONNX, wrong types, missing fields, unknown names, cycles, negative or absurd
sizes, missing files, traces out of order or naming unknown models: never a traceback.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRACE = (ROOT / "traces" / "ad_highway.s7.jsonl").read_text().splitlines()

GRAPHS = {
    "not-json": "{ not json",
    "not-object": "[1, 2]",
    "missing-layers": json.dumps({"name": "g"}),
    "wrong-type": json.dumps({"name": "g", "layers": "conv"}),
    "cycle": json.dumps(
        {
            "name": "g",
            "layers": [
                {"id": "x", "op": "input", "shape": [4]},
                {"id": "a", "op": "add", "inputs": ["x", "b"]},
                {"id": "b", "op": "relu", "inputs": ["a"]},
            ],
        }
    ),
    "dangling": json.dumps(
        {"name": "g", "layers": [{"id": "a", "op": "relu", "inputs": ["nowhere"]}]}
    ),
    "negative": json.dumps({"name": "g", "layers": [{"id": "x", "op": "input", "shape": [-4]}]}),
    "absurd": json.dumps(
        {"name": "g", "layers": [{"id": "x", "op": "input", "shape": [10**12, 10**12]}]}
    ),
    "unknown-op": json.dumps(
        {"name": "g", "layers": [{"id": "x", "op": "teleport", "shape": [4]}]}
    ),
}
TRACES = {
    "not-json": "{ nope\n",
    "no-header": "\n".join(TRACE[1:4]) + "\n",
    "out-of-order": "\n".join([TRACE[0], TRACE[3], TRACE[1]]) + "\n",
    "unknown-model": "\n".join([TRACE[0], TRACE[1].replace('"model":"', '"model":"no_such_net_')])
    + "\n",
    "wrong-type": "\n".join([TRACE[0], TRACE[1].replace('"priority":', '"priority":"x",":')])
    + "\n",
}
SCENARIOS = {
    "not-json": "{",
    "no-streams": json.dumps({"name": "s", "horizon_ms": 10, "streams": []}),
    "negative-period": json.dumps(
        {
            "name": "s",
            "horizon_ms": 10,
            "streams": [{"id": "a", "model": "resnet50", "period_ms": -1, "deadline_ms": 5}],
        }
    ),
    "unknown-model": json.dumps(
        {
            "name": "s",
            "horizon_ms": 10,
            "streams": [{"id": "a", "model": "nonet", "period_ms": 5, "deadline_ms": 5}],
        }
    ),
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isosched", *args], capture_output=True, text=True, timeout=300
    )


def refused(out: subprocess.CompletedProcess[str]) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("isosched: error: "), out.stderr


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case", sorted(GRAPHS))
@pytest.mark.parametrize("command", [["models", "show"], ["plan", "--hw", "edge-4x4"]])
def test_graph_commands(tmp_path, command, case):
    refused(run(*command, write(tmp_path, f"{case}.json", GRAPHS[case])))


def test_match_refuses_bad_tile_graphs(tmp_path):
    for text in ("{", json.dumps({"vertices": "x"}), json.dumps({"vertices": [], "edges": [1]})):
        refused(run("match", write(tmp_path, "t.json", text), "--mesh", "4x4"))


CHAIN = {"vertices": [{"id": v} for v in "abcd"], "edges": [{"src": "a", "dst": "b"}]}


@pytest.mark.parametrize(
    ("pattern", "args", "occupancy"),
    [
        # found by review: tracebacks, a hang, and a wrong "impossible"
        ({"vertices": [{"id": "a"}], "edges": [{"src": ["a"], "dst": "a"}]}, [], None),
        (
            {
                "vertices": [{"id": "a"}, {"id": "b"}],
                "edges": [{"src": "a", "dst": "b", "bytes": 2**63}],
            },
            [],
            None,
        ),
        ('{"vertices": [{"id": "\\ud800"}]}', [], None),
        (CHAIN, ["--mesh", "300x300", "--hops", "16"], None),
        (CHAIN, ["--engine", "cp+repair", "--budget-ms", "-1"], None),
        (CHAIN, ["--engine", "cp+repair", "--budget-ms", "nan"], None),
        (CHAIN, [], {"tiles": [], "held": [{"job": "j", "tiles": [[0, 0]], "cost": 1e308}]}),
        (CHAIN, [], {"tiles": [], "held": [{"job": "j", "tiles": [], "cost": 1}]}),
    ],
)
def test_match_refuses_input_it_cannot_answer(tmp_path, pattern, args, occupancy):
    text = pattern if isinstance(pattern, str) else json.dumps(pattern)
    argv = ["match", write(tmp_path, "t.json", text), "--mesh", "4x4", *args]
    if occupancy is not None:
        argv += ["--blocked", write(tmp_path, "occ.json", json.dumps(occupancy))]
    refused(run(*argv))


@pytest.mark.parametrize("case", sorted(TRACES))
def test_replay_refuses_bad_traces(tmp_path, case):
    refused(run("replay", "--hw", "edge-4x4", write(tmp_path, f"{case}.jsonl", TRACES[case])))


@pytest.mark.parametrize("case", sorted(set(TRACES) - {"unknown-model"}))  # show only summarises
def test_trace_show_refuses_bad_traces(tmp_path, case):
    refused(run("trace", "show", write(tmp_path, f"{case}.jsonl", TRACES[case])))


@pytest.mark.parametrize("case", sorted(SCENARIOS))
@pytest.mark.parametrize("command", [["trace", "gen"], ["sweep", "--hw", "edge-4x4"]])
def test_scenario_commands(tmp_path, command, case):
    if command[0] == "trace":
        command = [*command, "-o", str(tmp_path / "out.jsonl")]
    refused(run(*command, write(tmp_path, f"{case}.json", SCENARIOS[case])))
    assert not (tmp_path / "out.jsonl").exists()


def test_other_inputs(tmp_path):
    refused(run("hw", "show", write(tmp_path, "hw.json", json.dumps({"name": "x"}))))
    refused(run("hw", "show", "no-such-preset"))
    refused(run("import-onnx", write(tmp_path, "bad.onnx", "not onnx"), "-o", "x.json"))
    refused(run("match", str(tmp_path / "missing.json"), "--mesh", "4x4"))
    refused(run("match", write(tmp_path, "ok.json", '{"vertices": []}'), "--mesh", "0x4"))
    refused(run("models", "show", str(tmp_path / "missing.json")))
    refused(run("replay", str(tmp_path / "missing.jsonl")))
    refused(run("plan", "resnet50", "--hw", "edge-9x9"))
    refused(run("replay", str(ROOT / "traces" / "ad_highway.s7.jsonl"), "--policy", "nope"))
    refused(run("sweep", str(ROOT / "traces/scenarios/ad_urban.json"), "--scales", "a,b"))
