"""Property-based fuzzing of every parser: any input is either accepted or refused with an
``IsoschedError`` carrying a message, never another exception.

Two generators per format: arbitrary JSON-like values, and valid documents with one field
replaced by an arbitrary value (which reaches much deeper into validation).
"""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isosched.errors import IsoschedError
from isosched.graph import parse_graph
from isosched.io.hardware_json import load_hardware, parse_hardware
from isosched.io.trace_jsonl import parse_trace_lines
from isosched.trace import parse_scenario

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

GRAPH = json.loads((ROOT / "models" / "resnet50.json").read_text())
GRAPH = {**GRAPH, "layers": GRAPH["layers"][:12]}
HARDWARE = load_hardware("edge-4x4").model_dump(mode="json", by_alias=True)
SCENARIO = json.loads((ROOT / "traces" / "scenarios" / "ad_urban.json").read_text())
TRACE = (ROOT / "traces" / "ad_highway.s7.jsonl").read_text().splitlines()[:40]


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def mutated(doc: Any) -> st.SearchStrategy[Any]:
    """``doc`` with the value at one path replaced (or the key removed)."""
    where = [p for p in paths(doc) if p]

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        path = draw(st.sampled_from(where))
        out = copy.deepcopy(doc)
        parent = out
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
        return out

    return build()


def refused_cleanly(fn, value) -> None:
    try:
        fn(value)
    except IsoschedError as exc:
        assert str(exc).strip(), "an error needs a message"


@FUZZ
@given(st.one_of(json_values, mutated(GRAPH)))
def test_graph_parser(doc):
    refused_cleanly(parse_graph, doc)


@FUZZ
@given(st.one_of(json_values, mutated(HARDWARE)))
def test_hardware_parser(doc):
    refused_cleanly(parse_hardware, doc)


@FUZZ
@given(st.one_of(json_values, mutated(SCENARIO)))
def test_scenario_parser(doc):
    refused_cleanly(parse_scenario, doc)


@st.composite
def trace_texts(draw: st.DrawFn) -> list[str]:
    lines = list(TRACE)
    how = draw(st.sampled_from(["swap", "replace", "mutate", "drop", "garbage"]))
    i = draw(st.integers(0, len(lines) - 1))
    if how == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif how == "replace":
        lines[i] = json.dumps(draw(json_values))
    elif how == "mutate":
        lines[i] = json.dumps(draw(mutated(json.loads(lines[i]))))
    elif how == "drop":
        del lines[i]
    else:
        lines[i] = draw(st.text(max_size=40))
    return lines


@FUZZ
@given(trace_texts())
def test_trace_parser(lines):
    refused_cleanly(parse_trace_lines, lines)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (TRACE[:1] + TRACE[2:3] + TRACE[1:2], "goes back in time"),
        (TRACE[:2] + TRACE[1:2], "duplicate job id"),
        ([TRACE[0], TRACE[1].replace('"release_us":', '"release_us":-')], "release_us"),
        (TRACE[1:], "header"),
        ([], "empty"),
    ],
)
def test_trace_errors_name_the_problem(lines, message):
    with pytest.raises(IsoschedError, match=message):
        parse_trace_lines(lines)


ONNX = (ROOT / "models" / "onnx" / "resnet50.onnx").read_bytes()


@st.composite
def onnx_bytes(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "random"]))
    if how == "random":
        return draw(st.binary(max_size=256))
    data = bytearray(ONNX)
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(onnx_bytes())
def test_onnx_reader(tmp_path_factory, data):
    import warnings

    from isosched.io.onnx import read_onnx

    path = tmp_path_factory.mktemp("onnx") / "fuzz.onnx"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parse_graph(read_onnx(path))
        except IsoschedError as exc:
            assert str(exc).strip()
