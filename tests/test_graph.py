"""Graph IR: op rules, validation errors and caps."""

import math

import pytest

from isosched.errors import GraphError
from isosched.graph import infer_op, parse_graph
from isosched.io.graph_json import graph_json_schema, graph_to_dict, read_graph, write_graph


def _g(*layers, **kw):
    return parse_graph({"name": "t", "layers": list(layers), **kw})


def test_conv_shape_and_macs_resnet_stem():
    r = infer_op(
        "conv", {"out_channels": 64, "kernel": 7, "stride": 2, "padding": 3}, [(3, 224, 224)]
    )
    assert r.shape == (64, 112, 112)
    assert r.macs == 64 * 112 * 112 * 3 * 49
    assert r.weight_elems == 64 * 3 * 49


def test_grouped_dilated_and_transposed_conv():
    dw = infer_op(
        "conv", {"out_channels": 32, "kernel": 3, "padding": 1, "groups": 32}, [(32, 10, 10)]
    )
    assert dw.macs == 32 * 100 * 9 and dw.weight_elems == 32 * 9
    dil = infer_op("conv", {"out_channels": 8, "kernel": 3, "dilation": 2}, [(4, 10, 10)])
    assert dil.shape == (8, 6, 6)
    up = infer_op("conv_transpose", {"out_channels": 16, "kernel": 2, "stride": 2}, [(32, 8, 8)])
    assert up.shape == (16, 16, 16)
    assert up.macs == 32 * 64 * 16 * 4


def test_linear_matmul_attention():
    lin = infer_op("linear", {"out_features": 3072, "bias": True}, [(128, 768)])
    assert lin.shape == (128, 3072) and lin.macs == 128 * 768 * 3072
    assert lin.weight_elems == 768 * 3072 + 3072
    mm = infer_op("matmul", {"transpose_b": True}, [(12, 128, 64), (12, 128, 64)])
    assert mm.shape == (12, 128, 128) and mm.macs == 12 * 128 * 64 * 128
    att = infer_op("attention", {"heads": 12}, [(128, 768)] * 3)
    assert att.shape == (128, 768) and att.macs == 2 * 128 * 128 * 768
    packed = infer_op("attention", {"heads": 12}, [(128, 2304)])
    assert packed.macs == att.macs


def test_shape_only_ops():
    assert infer_op("concat", {"axis": 0}, [(3, 4, 4), (5, 4, 4)]).shape == (8, 4, 4)
    assert infer_op("split", {"axis": 0, "start": 2, "size": 3}, [(8, 4, 4)]).shape == (3, 4, 4)
    assert infer_op("reshape", {"shape": [-1, 16]}, [(8, 4, 4)]).shape == (8, 16)
    assert infer_op("flatten", {"start": 0}, [(8, 4, 4)]).shape == (128,)
    assert infer_op("transpose", {"perm": [1, 0]}, [(3, 5)]).shape == (5, 3)
    assert infer_op("resize", {"scale": 2}, [(3, 5, 5)]).shape == (3, 10, 10)
    assert infer_op("pool", {"global": True}, [(3, 5, 5)]).shape == (3, 1, 1)
    assert infer_op("embedding", {"num_embeddings": 100, "dim": 8}, [(16,)]).weight_elems == 800
    sm = infer_op("softmax", {"axis": -2}, [(12, 128, 128)])
    assert sm.shape == (12, 128, 128) and sm.vector_ops == 5 * 12 * 128 * 128
    assert infer_op("softmax", {}, [(4, 5)]).shape == (4, 5)


@pytest.mark.parametrize(
    ("op", "params", "shapes", "message"),
    [
        ("conv", {"out_channels": 4, "kernel": 9}, [(3, 4, 4)], "empty"),
        ("conv", {"out_channels": 4, "kernel": 1, "groups": 2}, [(3, 4, 4)], "groups"),
        ("matmul", {}, [(4, 5), (6, 7)], "inner dims"),
        ("add", {}, [(4, 5), (4, 6)], "differ"),
        ("reshape", {"shape": [7]}, [(4, 5)], "cannot reshape"),
        ("attention", {"heads": 5}, [(4, 12)] * 3, "heads"),
        ("nope", {}, [(1,)], "unknown op"),
        ("conv", {"kernel": 1}, [(3, 4, 4)], "out_channels"),
        ("softmax", {"axis": 2}, [(4, 5)], "axis 2 out of range for a rank-2"),
        ("softmax", {"axis": -3}, [(4, 5)], "axis -3 out of range"),
    ],
)
def test_bad_op_params(op, params, shapes, message):
    with pytest.raises(GraphError, match=message):
        infer_op(op, params, shapes)


def test_graph_topological_order_and_totals():
    g = _g(
        {"id": "add", "op": "add", "inputs": ["a", "b"]},
        {"id": "a", "op": "conv", "inputs": ["x"], "out_channels": 4, "kernel": 1},
        {"id": "b", "op": "conv", "inputs": ["x"], "out_channels": 4, "kernel": 1},
        {"id": "x", "op": "input", "shape": [2, 3, 3]},
    )
    order = [lay.id for lay in g]
    assert order.index("x") < order.index("a") < order.index("add")
    assert g.macs == 2 * (4 * 9 * 2)
    assert sorted(g.edges) == [("a", "add"), ("b", "add"), ("x", "a"), ("x", "b")]
    assert g["add"].input_bytes == 2 * 36


def test_source_layer_with_input_shape_and_dtype():
    g = _g(
        {"id": "c", "op": "conv", "input_shape": [3, 8, 8], "out_channels": 2, "kernel": 1},
        dtype="fp16",
    )
    assert g["c"].output_bytes == 2 * 64 * 2
    assert g["c"].weight_bytes == 6 * 2


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            [{"id": "a", "op": "input", "shape": [1]}, {"id": "a", "op": "input", "shape": [1]}],
            "duplicate layer id 'a'",
        ),
        ([{"id": "a", "op": "activation", "inputs": ["ghost"]}], "unknown layer 'ghost'"),
        (
            [
                {"id": "a", "op": "activation", "inputs": ["b"]},
                {"id": "b", "op": "activation", "inputs": ["a"]},
            ],
            "cycle",
        ),
        ([{"id": "a", "op": "activation", "inputs": ["a"]}], "reads itself"),
        ([{"id": "a", "op": "input", "shape": [-3]}], "layer 'a'"),
        ([{"id": "a", "op": "conv", "out_channels": 2, "kernel": 1}], "no inputs"),
        ([{"id": "a", "op": "input", "shape": [1], "bogus": 1}], "bogus"),
        ([{"id": "a", "op": "input", "shape": [100000, 100000, 100]}], "exceeds the limit"),
    ],
)
def test_invalid_graphs_name_the_layer(layers, message):
    with pytest.raises(GraphError, match=message):
        _g(*layers)


def test_layer_count_cap_is_checked_before_layers():
    huge = {"name": "t", "layers": [{}] * 1_000_001}
    with pytest.raises(GraphError, match="limit is 1,000,000"):
        parse_graph(huge)


def test_not_an_object_and_wrong_schema():
    with pytest.raises(GraphError, match="JSON object"):
        parse_graph([1, 2])
    with pytest.raises(GraphError, match="unsupported graph schema"):
        parse_graph({"schema": "isosched.graph/v9", "name": "x", "layers": []})


def test_round_trip_through_file(tmp_path):
    g = _g(
        {"id": "x", "op": "input", "shape": [3, 16, 16]},
        {"id": "c", "op": "conv", "inputs": ["x"], "out_channels": 8, "kernel": 3, "padding": 1},
        {"id": "p", "op": "pool", "inputs": ["c"], "kind": "avg", "global": True},
        {"id": "f", "op": "flatten", "inputs": ["p"]},
        {"id": "fc", "op": "linear", "inputs": ["f"], "out_features": 10, "bias": True},
    )
    path = tmp_path / "g.json"
    write_graph(g, path)
    back = read_graph(path)
    assert graph_to_dict(back) == graph_to_dict(g)
    assert back.macs == g.macs == 8 * 256 * 27 + 80
    assert math.isclose(back.params, 8 * 27 + 8 * 10 + 10)


def test_read_graph_errors(tmp_path):
    with pytest.raises(GraphError, match="cannot read"):
        read_graph(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GraphError, match="not valid JSON"):
        read_graph(bad)


def test_json_schema_lists_every_op():
    schema = graph_json_schema()
    text = str(schema)
    for op in ("conv", "conv_transpose", "attention", "embedding", "generic", "split"):
        assert f"'{op}'" in text
    assert schema["properties"]["schema"]["const"] == "isosched.graph/v1"
