"""ONNX import: hand-built models with hand-computed MACs, and the committed real exports."""

from __future__ import annotations

import functools
import json
import sys
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from isosched.errors import GraphError
from isosched.graph import Graph, parse_graph
from isosched.io.onnx import CONVERTERS, UnknownOpWarning, onnx_to_graph_doc, parse_onnx, read_onnx

ROOT = Path(__file__).resolve().parents[1]
ONNX_DIR = ROOT / "models" / "onnx"
F = TensorProto.FLOAT
I64 = TensorProto.INT64


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


class Weights:
    """Weights of a hand-built model: initializers with values (``init``), typed graph inputs
    (``input``) or initializers whose data was cleared (``empty``)."""

    def __init__(self, mode: str = "init") -> None:
        self.mode = mode
        self.inits: list[TensorProto] = []
        self.inputs: list[Any] = []
        self.rng = np.random.default_rng(0)

    def add(self, name: str, *dims: int) -> str:
        if self.mode == "input":
            self.inputs.append(helper.make_tensor_value_info(name, F, list(dims)))
            return name
        tensor = numpy_helper.from_array(self.rng.standard_normal(dims).astype(np.float32), name)
        if self.mode == "empty":
            tensor.ClearField("raw_data")
        self.inits.append(tensor)
        return name


MODES = ["init", "input", "empty"]


def const(name: str, values: list[int]) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def make_model(
    nodes: list[Any],
    inputs: list[Any],
    outputs: list[str],
    w: Weights | None = None,
    inits: list[TensorProto] | None = None,
    opset: int = 17,
    **kw: Any,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "test",
        inputs + (w.inputs if w else []),
        [helper.make_tensor_value_info(o, F, None) for o in outputs],
        initializer=(w.inits if w else []) + (inits or []),
        **kw,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def convert(model: onnx.ModelProto, name: str = "m") -> tuple[dict[str, Any], Graph]:
    doc = onnx_to_graph_doc(model, name)
    return doc, parse_graph(doc)


def by_op(g: Graph, op: str) -> list[Any]:
    return [lay for lay in g.layers if lay.op == op]


def conv_chain(mode: str) -> onnx.ModelProto:
    """Conv(3->16, 3x3, pad 1, bias) -> BN -> Relu -> Conv(16->32, 3x3, stride 2, pad 1) -> BN
    -> Relu on a 32x32 image."""
    w = Weights(mode)
    nodes = [
        helper.make_node(
            "Conv",
            ["x", w.add("w1", 16, 3, 3, 3), w.add("b1", 16)],
            ["c1"],
            name="conv1",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node(
            "BatchNormalization",
            ["c1", w.add("g1", 16), w.add("be1", 16), w.add("m1", 16), w.add("v1", 16)],
            ["n1"],
            name="bn1",
        ),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node(
            "Conv",
            ["r1", w.add("w2", 32, 16, 3, 3)],
            ["c2"],
            name="conv2",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node(
            "BatchNormalization",
            ["c2", w.add("g2", 32), w.add("be2", 32), w.add("m2", 32), w.add("v2", 32)],
            ["n2"],
            name="bn2",
        ),
        helper.make_node("Relu", ["n2"], ["y"], name="relu2"),
    ]
    x = helper.make_tensor_value_info("x", F, [1, 3, 32, 32])
    return make_model(nodes, [x], ["y"], w)


# ------------------------------------------------------------------------------------------
# Hand-built models
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_conv_chain(mode: str) -> None:
    doc, g = convert(conv_chain(mode))
    assert [lay.op for lay in g.layers] == [
        "input",
        "conv",
        "norm",
        "activation",
        "conv",
        "norm",
        "activation",
    ]
    assert g["x"].output_shape == (3, 32, 32)
    c1, c2 = g["conv1"], g["conv2"]
    assert c1.output_shape == (16, 32, 32)
    assert c2.output_shape == (32, 16, 16)
    # 16 * 32*32 * 3*3*3 and 32 * 16*16 * 16*3*3
    assert c1.macs == 442_368
    assert c2.macs == 1_179_648
    assert g.macs == 1_622_016
    assert dict(c1.params)["bias"] is True and dict(c2.params)["bias"] is False
    assert dict(c2.params)["stride"] == (2, 2) and dict(c2.params)["padding"] == (1, 1)
    assert g["bn1"].params["kind"] == "batch"
    # conv1 16*27 + 16, bn1 2*16, conv2 32*144, bn2 2*32 (one byte each at int8)
    assert g.params == 448 + 32 + 4608 + 64
    assert g["relu2"].inputs == ("bn2",)
    assert doc["meta"]["source"] == "onnx"


def test_weight_storage_does_not_matter() -> None:
    docs = [onnx_to_graph_doc(conv_chain(mode), "m") for mode in MODES]
    assert docs[0]["layers"] == docs[1]["layers"] == docs[2]["layers"]
    assert sum(lay["op"] == "input" for lay in docs[1]["layers"]) == 1


def test_diamond_dag_with_add() -> None:
    w = Weights()
    nodes = [
        helper.make_node(
            "Conv", ["x", w.add("wa", 8, 8, 1, 1)], ["a"], name="branch_a", kernel_shape=[1, 1]
        ),
        helper.make_node(
            "Conv",
            ["x", w.add("wb", 8, 8, 3, 3)],
            ["b"],
            name="branch_b",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Add", ["a", "b"], ["s"], name="join"),
        helper.make_node("Relu", ["s"], ["y"], name="out"),
    ]
    x = helper.make_tensor_value_info("x", F, [1, 8, 16, 16])
    _, g = convert(make_model(nodes, [x], ["y"], w))
    assert g["join"].op == "add"
    assert set(g["join"].inputs) == {"branch_a", "branch_b"}
    assert g["branch_a"].inputs == g["branch_b"].inputs == ("x",)
    # 8*256*8 + 8*256*72
    assert g["branch_a"].macs == 16_384
    assert g["branch_b"].macs == 147_456
    assert g.macs == 163_840
    assert sorted(g.edges) == sorted(
        [
            ("x", "branch_a"),
            ("x", "branch_b"),
            ("branch_a", "join"),
            ("branch_b", "join"),
            ("join", "out"),
        ]
    )


@pytest.mark.parametrize("mode", MODES)
def test_gemm_matmul_mlp(mode: str) -> None:
    w = Weights(mode)
    nodes = [
        helper.make_node(
            "Gemm", ["x", w.add("w1", 128, 64), w.add("b1", 128)], ["h"], name="fc1", transB=1
        ),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", w.add("w2", 128, 10)], ["mm"], name="fc2"),
        helper.make_node("Add", ["mm", w.add("b2", 10)], ["logits"], name="fc2_bias"),
        helper.make_node("Softmax", ["logits"], ["y"], name="prob", axis=-1),
    ]
    x = helper.make_tensor_value_info("x", F, [1, 64])
    _, g = convert(make_model(nodes, [x], ["y"], w))
    assert [lay.op for lay in g.layers] == ["input", "linear", "activation", "linear", "softmax"]
    assert g["fc1"].output_shape == (128,)
    assert g["fc2"].output_shape == (10,)
    assert g["prob"].inputs == ("fc2",)  # the bias Add is folded into fc2
    assert g["fc1"].macs == 64 * 128
    assert g["fc2"].macs == 128 * 10
    assert g.macs == 9_472
    assert g.params == 64 * 128 + 128 + 128 * 10 + 10


def test_softmax_over_the_batch_axis_is_a_generic_layer_of_the_same_work() -> None:
    # the IR has no batch axis, so its softmax rule refuses axis 0 of [N, 10]; the import notes
    # it and keeps the work (about 5 vector ops per element)
    w = Weights()
    nodes = [
        helper.make_node("Gemm", ["x", w.add("w1", 10, 8)], ["h"], name="fc", transB=1),
        helper.make_node("Softmax", ["h"], ["y"], name="prob", axis=0),
    ]
    x = helper.make_tensor_value_info("x", F, [1, 8])
    doc, g = convert(make_model(nodes, [x], ["y"], w))
    assert g["prob"].op == "generic" and g["prob"].output_shape == (10,)
    assert g["prob"].vector_ops == 5 * 10
    assert any(
        n.startswith("prob: Softmax as generic (axis -2 out of range") for n in doc["meta"]["notes"]
    )
    nodes[1] = helper.make_node("Softmax", ["h"], ["y"], name="prob", axis=1)
    _, g = convert(make_model(nodes, [x], ["y"], w))
    assert g["prob"].op == "softmax" and g["prob"].vector_ops == 5 * 10


def test_multi_head_attention_with_shape_arithmetic() -> None:
    """Linear projections, head split via Shape/Gather/Concat, Q.K^T and A.V as matmuls."""
    w = Weights()
    s, d, h, hd = 16, 64, 4, 16
    nodes = [
        # target shape [B, S, H, hd] computed from the input's shape
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "i0"], ["bsz"], axis=0),
        helper.make_node("Gather", ["xs", "i1"], ["seq"], axis=0),
        helper.make_node("Unsqueeze", ["bsz", "ax0"], ["bsz1"]),
        helper.make_node("Unsqueeze", ["seq", "ax0"], ["seq1"]),
        helper.make_node("Concat", ["bsz1", "seq1", "heads"], ["split_shape"], axis=0),
    ]
    for p in ("q", "k", "v"):
        nodes += [
            helper.make_node("MatMul", ["x", w.add(f"w{p}", d, d)], [f"{p}0"], name=f"{p}_proj"),
            helper.make_node("Reshape", [f"{p}0", "split_shape"], [f"{p}1"], name=f"{p}_split"),
        ]
    nodes += [
        helper.make_node("Transpose", ["q1"], ["q2"], name="q_t", perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k1"], ["k2"], name="k_t", perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["v1"], ["v2"], name="v_t", perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["q2", "k2"], ["sc"], name="qk"),
        helper.make_node("Div", ["sc", "scale"], ["sc2"], name="scale_scores"),
        helper.make_node("Softmax", ["sc2"], ["p"], name="attn", axis=-1),
        helper.make_node("MatMul", ["p", "v2"], ["o"], name="av"),
        helper.make_node("Transpose", ["o"], ["o2"], name="o_t", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["o2", "merge_shape"], ["o3"], name="merge"),
        helper.make_node("MatMul", ["o3", w.add("wo", d, d)], ["y"], name="o_proj"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "i0"),
        numpy_helper.from_array(np.array(1, np.int64), "i1"),
        const("ax0", [0]),
        const("heads", [h, hd]),
        const("merge_shape", [1, s, d]),
        numpy_helper.from_array(np.array(4.0, np.float32), "scale"),
    ]
    x = helper.make_tensor_value_info("x", F, [1, s, d])
    _, g = convert(make_model(nodes, [x], ["y"], w, inits=inits))
    assert len(by_op(g, "linear")) == 4
    assert [lay.id for lay in by_op(g, "matmul")] == ["qk", "av"]
    assert g["q_split"].output_shape == (s, h, hd)
    assert g["q_t"].output_shape == (h, s, hd)
    assert g["k_t"].output_shape == (h, hd, s)
    assert g["qk"].output_shape == (h, s, s)
    assert g["scale_scores"].op == "activation"
    assert g["av"].output_shape == (h, s, hd)
    assert g["merge"].output_shape == (s, d)
    assert g["qk"].macs == g["av"].macs == h * s * s * hd
    assert g.macs == 4 * s * d * d + 2 * h * s * s * hd  # 262144 + 32768
    assert not by_op(g, "generic")


def test_pool_resize_concat_split_slice_flatten() -> None:
    w = Weights()
    nodes = [
        helper.make_node(
            "MaxPool",
            ["x"],
            ["mp"],
            name="maxpool",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node(
            "AveragePool", ["mp"], ["ap"], name="avgpool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Resize", ["ap", "", "scales"], ["up"], name="upsample", mode="nearest"),
        helper.make_node("Concat", ["mp", "up"], ["cat"], name="cat", axis=1),
        helper.make_node("Split", ["cat", "sizes"], ["s0", "s1"], name="split", axis=1),
        helper.make_node("Slice", ["s1", "st", "en", "axes"], ["sl"], name="slice"),
        helper.make_node("Add", ["s0", "sl"], ["sum"], name="sum"),
        helper.make_node("GlobalAveragePool", ["sum"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["fl"], name="flatten", axis=1),
        helper.make_node("Gemm", ["fl", w.add("fc", 4, 4)], ["y"], name="fc", transB=1),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        const("sizes", [4, 12]),
        const("st", [2]),
        const("en", [6]),
        const("axes", [1]),
    ]
    x = helper.make_tensor_value_info("x", F, [1, 8, 16, 16])
    _, g = convert(make_model(nodes, [x], ["y"], w, inits=inits))
    assert g["maxpool"].output_shape == (8, 8, 8)
    assert dict(g["maxpool"].params)["stride"] == (2, 2)
    assert g["avgpool"].output_shape == (8, 4, 4)
    assert g["upsample"].op == "resize" and g["upsample"].output_shape == (8, 8, 8)
    assert g["cat"].output_shape == (16, 8, 8)
    assert g["split_0"].op == g["split_1"].op == "split"
    assert dict(g["split_1"].params)["start"] == 4
    assert g["split_0"].output_shape == (4, 8, 8)
    assert g["split_1"].output_shape == (12, 8, 8)
    assert g["slice"].op == "split" and dict(g["slice"].params)["start"] == 2
    assert g["slice"].output_shape == (4, 8, 8)
    assert g["gap"].output_shape == (4, 1, 1)
    assert g["flatten"].op == "flatten" and g["flatten"].output_shape == (4,)
    assert g["fc"].op == "linear" and g["fc"].macs == 16
    assert g.macs == 16


def test_conv_transpose_asymmetric_pads_and_embedding() -> None:
    w = Weights()
    nodes = [
        helper.make_node(
            "ConvTranspose",
            ["x", w.add("wt", 4, 2, 4, 4)],
            ["up"],
            name="deconv",
            kernel_shape=[4, 4],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node(
            "Conv",
            ["up", w.add("wc", 6, 2, 3, 3)],
            ["y"],
            name="same_conv",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[0, 0, 1, 1],
        ),
    ]
    x = helper.make_tensor_value_info("x", F, [1, 4, 8, 8])
    doc, g = convert(make_model(nodes, [x], ["y"], w))
    assert g["deconv"].op == "conv_transpose" and g["deconv"].output_shape == (2, 16, 16)
    assert g["deconv"].macs == 4 * 8 * 8 * 2 * 4 * 4
    # TF-style SAME padding (0 before, 1 after) on 16 -> 8: mapped to a symmetric 1
    assert g["same_conv"].op == "conv" and g["same_conv"].output_shape == (6, 8, 8)
    assert g["same_conv"].macs == 6 * 8 * 8 * 2 * 9
    assert any("asymmetric" in n for n in doc["meta"]["notes"])

    e = Weights("input")
    nodes = [
        helper.make_node("Gather", [e.add("table", 100, 32), "ids"], ["emb"], name="embed"),
        helper.make_node(
            "LayerNormalization", ["emb", e.add("ln_g", 32), e.add("ln_b", 32)], ["y"], name="ln"
        ),
    ]
    ids = helper.make_tensor_value_info("ids", I64, [1, 10])
    _, g = convert(make_model(nodes, [ids], ["y"], e))
    assert [lay.op for lay in g.layers] == ["input", "embedding", "norm"]
    assert g["embed"].output_shape == (10, 32)
    assert dict(g["embed"].params) == {"num_embeddings": 100, "dim": 32}
    assert g["ln"].params["kind"] == "layer"


def test_unmappable_matmul_becomes_generic_with_macs() -> None:
    """A weight on the left of a MatMul (W @ x) has no IR op: generic, MACs kept."""
    w = Weights()
    nodes = [helper.make_node("MatMul", [w.add("w", 32, 16), "x"], ["y"], name="wx")]
    x = helper.make_tensor_value_info("x", F, [1, 16, 8])
    _, g = convert(make_model(nodes, [x], ["y"], w))
    assert g["wx"].op == "generic"
    assert g["wx"].output_shape == (32, 8)
    assert g["wx"].macs == 32 * 16 * 8


# ------------------------------------------------------------------------------------------
# Unknown ops, bad input
# ------------------------------------------------------------------------------------------


def test_unknown_ops_warn_and_become_generic() -> None:
    w = Weights()
    nodes = [
        helper.make_node(
            "Conv", ["x", w.add("w", 8, 4, 1, 1)], ["c"], name="conv", kernel_shape=[1, 1]
        ),
        helper.make_node("Frobnicate", ["c"], ["f"], name="frob", domain="com.example"),
        helper.make_node("CumSum", ["f", "axis"], ["cs"], name="cumsum"),
        helper.make_node("Relu", ["cs"], ["y"], name="relu"),
    ]
    inits = [numpy_helper.from_array(np.array(1, np.int64), "axis")]
    x = helper.make_tensor_value_info("x", F, [1, 4, 8, 8])
    model = helper.make_model(
        helper.make_graph(
            nodes,
            "t",
            [x],
            [helper.make_tensor_value_info("y", F, None)],
            initializer=w.inits + inits,
        ),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
    )
    with pytest.warns(UnknownOpWarning) as rec:
        doc, g = convert(model)
    messages = " ".join(str(r.message) for r in rec)
    assert "Frobnicate" in messages and "CumSum" in messages
    frob, cumsum = g["frob"], g["cumsum"]
    assert frob.op == cumsum.op == "generic"
    assert frob.params["kind"] == "Frobnicate"
    assert frob.output_shape == cumsum.output_shape == g["relu"].output_shape == (8, 8, 8)
    assert g["relu"].inputs == ("cumsum",)
    assert doc["meta"]["unknown_ops"] == {"CumSum": 1, "com.example::Frobnicate": 1}
    assert g.macs == g["conv"].macs == 8 * 64 * 4


def test_known_ops_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownOpWarning)
        convert(conv_chain("init"))


def test_symbolic_batch_and_dims() -> None:
    w = Weights()
    nodes = [helper.make_node("MatMul", ["x", w.add("w", 32, 8)], ["y"], name="fc")]
    x = helper.make_tensor_value_info("x", F, ["batch", "seq", 32])
    model = make_model(nodes, [x], ["y"], w)
    with pytest.raises(GraphError, match="symbolic dimension 'seq'") as refused:
        onnx_to_graph_doc(model, "m")
    # the hint names both front ends' spelling (the API's is the query parameter ?dim=)
    assert "--dim seq=VALUE" in str(refused.value) and "?dim=seq=VALUE" in str(refused.value)
    g = parse_graph(onnx_to_graph_doc(model, "m", dims={"seq": 20}))
    assert g["x"].output_shape == (20, 32)
    assert g["fc"].macs == 20 * 32 * 8


def test_layer_ids_are_sanitised_and_unique() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="/block/act"),
        helper.make_node("Relu", ["a"], ["b"], name="/block/act"),
        helper.make_node("Sigmoid", ["b"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", F, [1, 4])
    _, g = convert(make_model(nodes, [x], ["y"]))
    assert [lay.id for lay in g.layers] == ["x", "block_act", "block_act_2", "y"]


def test_garbage_file_raises_graph_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage\xff\xfe not a protobuf" * 50)
    with pytest.raises(GraphError) as exc:
        read_onnx(bad)
    assert "\n" not in str(exc.value)
    assert "not a valid ONNX model" in str(exc.value)


def test_empty_truncated_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(GraphError, match="no graph"):
        read_onnx(empty)
    truncated = tmp_path / "trunc.onnx"
    truncated.write_bytes((ONNX_DIR / "resnet50.onnx").read_bytes()[:30_000])
    with pytest.raises(GraphError) as exc:
        read_onnx(truncated)
    assert "\n" not in str(exc.value)
    with pytest.raises(GraphError, match="cannot read ONNX file"):
        read_onnx(tmp_path / "missing.onnx")


def test_dangling_tensor_is_a_graph_error() -> None:
    nodes = [helper.make_node("Add", ["x", "nowhere"], ["y"], name="add")]
    x = helper.make_tensor_value_info("x", F, [1, 4])
    with pytest.raises(GraphError, match="undefined tensor 'nowhere'"):
        onnx_to_graph_doc(make_model(nodes, [x], ["y"]), "m")


#: The ONNX ops the importer is asked to cover, each with a converter of its own.
LISTED_OPS = """
    Conv ConvTranspose Gemm MatMul Add Mul Sub Div Relu Sigmoid Tanh Gelu Erf HardSigmoid
    HardSwish Clip LeakyRelu Silu Softmax BatchNormalization LayerNormalization
    InstanceNormalization GroupNormalization MaxPool AveragePool GlobalAveragePool GlobalMaxPool
    Concat Split Slice Reshape Flatten Transpose Squeeze Unsqueeze Identity Dropout Cast Gather
    Resize Upsample Shape
"""


def test_registry_covers_the_listed_ops() -> None:
    assert not [op for op in LISTED_OPS.split() if op not in CONVERTERS]


# ------------------------------------------------------------------------------------------
# The committed real exports
# ------------------------------------------------------------------------------------------

PUBLISHED = {"resnet50": 4.09e9, "bert_base": 11.17e9}


@functools.cache
def load_export(name: str) -> Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownOpWarning)
        doc = read_onnx(ONNX_DIR / f"{name}.onnx")
    assert doc["name"] == name
    return parse_graph(doc)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_export_macs_match_published(name: str) -> None:
    assert load_export(name).macs == pytest.approx(PUBLISHED[name], rel=0.03)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_export_files_are_small_and_weight_free(name: str) -> None:
    path = ONNX_DIR / f"{name}.onnx"
    assert path.stat().st_size < 200 * 1024
    model = onnx.load(str(path), load_external_data=False)
    floats = [t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT]
    assert all(np.prod(t.dims) <= 1 for t in floats)


def test_resnet50_export_structure() -> None:
    g = load_export("resnet50")
    assert len(by_op(g, "input")) == 1
    assert g.layers[0].output_shape == (3, 224, 224)
    convs = by_op(g, "conv")
    assert len(convs) == 53
    assert convs[0].output_shape == (64, 112, 112)
    assert dict(convs[0].params)["kernel"] == (7, 7)
    assert len(by_op(g, "add")) == 16
    assert not by_op(g, "generic")
    assert g.layers[-1].op == "pool" and g.layers[-1].output_shape == (2048, 1, 1)


def test_bert_export_structure() -> None:
    g = load_export("bert_base")
    assert [lay.output_shape for lay in by_op(g, "input")] == [(128,)]
    assert len(by_op(g, "embedding")) == 1
    assert len(by_op(g, "linear")) == 12 * 6 + 1
    mms = by_op(g, "matmul")
    assert len(mms) == 24
    assert {m.output_shape for m in mms} == {(12, 128, 128), (12, 128, 64)}
    assert sum(m.macs for m in mms) == 24 * 12 * 128 * 128 * 64
    assert len(by_op(g, "softmax")) == 12
    assert len(by_op(g, "norm")) == 25
    # the only generic layers are the NaN guards (Where) after each softmax, with no MACs
    assert {lay.params["kind"] for lay in by_op(g, "generic")} == {"Where"}
    assert all(lay.macs == 0 for lay in by_op(g, "generic"))


def _unet_macs(h: int, w: int) -> int:
    """MACs of ``models/export_onnx.py``'s bilinear U-Net, from its layer table (3x3 "same"
    convolutions, widths 64-128-256-512-512, decoder convolutions through half their input
    width, a 1x1 head to 2 classes)."""

    def conv(cin: int, cout: int, k: int = 3) -> int:
        return cout * h * w * cin * k * k

    macs = conv(3, 64) + conv(64, 64)
    for cin, cout in [(64, 128), (128, 256), (256, 512), (512, 512)]:
        h, w = h // 2, w // 2
        macs += conv(cin, cout) + conv(cout, cout)
    for cin, cout in [(1024, 256), (512, 128), (256, 64), (128, 64)]:
        h, w = h * 2, w * 2
        macs += conv(cin, cin // 2) + conv(cin // 2, cout)
    return macs + conv(64, 2, 1)


@pytest.mark.parametrize(("h", "w"), [(256, 512), (128, 128)])
def test_dynamic_unet_export_imports_with_dims(h: int, w: int) -> None:
    """A real dynamic-H/W export (torch dynamo): refused without --dim, exact with it, and its
    Resize scales (a float initializer) survive the weight stripping."""
    path = ONNX_DIR / "unet_dynamic.onnx"
    assert path.stat().st_size < 200 * 1024
    with pytest.raises(GraphError, match="--dim height=VALUE"):
        read_onnx(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownOpWarning)
        doc = read_onnx(path, dims={"height": h, "width": w})
    g = parse_graph(doc)
    assert g.macs == _unet_macs(h, w)
    assert _unet_macs(256, 512) == 79_968_600_064
    assert counts(doc) == (0, 0)
    assert len(by_op(g, "conv")) == 19 and len(by_op(g, "resize")) == 4
    assert by_op(g, "resize")[-1].output_shape == (64, h, w)
    assert g.layers[-1].output_shape == (2, h, w)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_exports_match_the_zoo(name: str) -> None:
    zoo = pytest.importorskip("isosched.zoo")
    load = getattr(zoo, "load_zoo_model", None)
    if load is None:
        pytest.skip("isosched.zoo.load_zoo_model is not available")
    assert load_export(name).macs == pytest.approx(load(name).macs, rel=0.03)


# ------------------------------------------------------------------------------------------
# Models shipped inside the onnx package (other exporters, old opsets)
# ------------------------------------------------------------------------------------------

BACKEND_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
BUNDLED = sorted(BACKEND_DATA.glob("*/*/model.onnx")) + sorted(BACKEND_DATA.glob("light/*.onnx"))


@pytest.mark.skipif(not BUNDLED, reason="this onnx build ships no backend test models")
def test_bundled_models_import_without_crashing() -> None:
    assert len(BUNDLED) > 50
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownOpWarning)
        for path in BUNDLED:
            parse_graph(read_onnx(path))


def test_bundled_caffe2_resnet50_macs() -> None:
    """ResNet-50 with its classifier, exported by Caffe2 at opset 9 with weights produced by
    ConstantOfShape nodes: 4,089,184,256 MACs, the same as the zoo's hand-built model."""
    path = BACKEND_DATA / "light" / "light_resnet50.onnx"
    if not path.exists():
        pytest.skip("this onnx build ships no light models")
    g = parse_graph(read_onnx(path))
    assert g.macs == 4_089_184_256
    assert len(by_op(g, "conv")) == 53 and len(by_op(g, "linear")) == 1


# ------------------------------------------------------------------------------------------
# Issue 18: shapes from the file, honesty counts, contrib ops, control flow, dynamic dims,
# cost-model edge cases, folding, tied weights. Each model's MACs are computed by hand.
# ------------------------------------------------------------------------------------------

U8 = TensorProto.UINT8
MS = "com.microsoft"


def w_init(name: str, *dims: int, dtype: Any = np.float32) -> TensorProto:
    """An initializer of ones (values never matter, only shapes)."""
    return numpy_helper.from_array(np.ones(dims, dtype=dtype), name)


def model_of(
    nodes: list[Any],
    inputs: list[Any],
    inits: list[TensorProto] | None = None,
    *,
    opset: int = 17,
    domains: tuple[str, ...] = (),
    value_info: list[Any] | None = None,
    outputs: list[str] | None = None,
) -> onnx.ModelProto:
    outs = outputs or [nodes[-1].output[0]]
    graph = helper.make_graph(
        nodes,
        "t",
        inputs,
        [helper.make_tensor_value_info(o, F, None) for o in outs],
        initializer=inits or [],
        value_info=value_info or [],
    )
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


def quiet(model: onnx.ModelProto, **kw: Any) -> tuple[dict[str, Any], Graph]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownOpWarning)
        doc = onnx_to_graph_doc(model, "m", **kw)
    return doc, parse_graph(doc)


def counts(doc: dict[str, Any]) -> tuple[int, int]:
    meta = doc["meta"]
    return meta["guessed_shape_layers"], meta["unknown_compute_layers"]


def vi(name: str, dims: list[Any], dtype: int = F) -> Any:
    return helper.make_tensor_value_info(name, dtype, dims)


def test_every_import_records_its_uncertainty() -> None:
    doc, _ = quiet(conv_chain("init"))
    assert counts(doc) == (0, 0) and doc["meta"]["uncertain_layers"] == {}


def test_value_info_of_the_file_is_kept_where_inference_gives_nothing() -> None:
    """Concat(axis=-2) at opset 10: ONNX cannot type it; the file's value_info can."""
    nodes = [
        helper.make_node("Concat", ["x", "y"], ["c"], axis=-2, name="cat"),
        helper.make_node("MatMul", ["c", "w"], ["o"], name="fc"),
    ]
    ins = [vi("x", [1, 4, 8]), vi("y", [1, 4, 8])]
    stored = [vi("c", [1, 8, 8])]
    doc, g = quiet(model_of(nodes, ins, [w_init("w", 8, 16)], opset=10, value_info=stored))
    assert g["cat"].op == "concat" and g["cat"].output_shape == (8, 8)
    assert g.macs == 8 * 8 * 16 and counts(doc) == (0, 0)
    # without it the importer still converts, but says that the concat's shape is a guess
    # (the layers after it inherit the guess: here fc counts 4·8·16 MACs)
    doc, g = quiet(model_of(nodes, ins, [w_init("w", 8, 16)], opset=10))
    assert counts(doc) == (1, 0)
    assert set(doc["meta"]["uncertain_layers"]) == {"cat"}
    assert g.macs == 4 * 8 * 16


def test_op_schemas_are_checked_at_the_models_opset() -> None:
    """LayerNormalization (opset 17) in an opset-12 file: shaped by rule, not dropped."""
    nodes = [
        helper.make_node("LayerNormalization", ["x", "g", "b"], ["n"], name="ln"),
        helper.make_node("MatMul", ["n", "w"], ["o"], name="fc"),
    ]
    inits = [w_init("g", 64), w_init("b", 64), w_init("w", 64, 256)]
    doc, g = quiet(model_of(nodes, [vi("x", [1, 10, 64])], inits, opset=12))
    assert g["ln"].op == "norm" and g["fc"].output_shape == (10, 256)
    assert g.macs == 10 * 64 * 256 and counts(doc) == (0, 0)


def test_unknown_op_takes_its_shape_from_its_first_data_input_only() -> None:
    """Foo(bias, x): the bias comes first, the output is shaped like x and flagged."""
    nodes = [
        helper.make_node("Foo", ["b", "x"], ["f"], name="foo", domain="custom"),
        helper.make_node("MatMul", ["f", "w"], ["o"], name="fc"),
    ]
    inits = [w_init("b", 16), w_init("w", 16, 32)]
    model = model_of(nodes, [vi("x", [1, 8, 16])], inits, domains=("custom",))
    with pytest.warns(UnknownOpWarning):
        doc = onnx_to_graph_doc(model, "m")
    g = parse_graph(doc)
    assert g["foo"].output_shape == (8, 16)
    assert g["fc"].macs == 8 * 16 * 32
    assert counts(doc) == (1, 1)
    assert "compute" in doc["meta"]["uncertain_layers"]["foo"]


def _ort_bert_ffn(with_opset: bool) -> onnx.ModelProto:
    """ORT-fused BERT FFN: MatMul -> BiasGelu(bias) -> MatMul, S = 128, D = 768, F = 3072."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("BiasGelu", ["h", "b1"], ["a"], name="gelu", domain=MS),
        helper.make_node("MatMul", ["a", "w2"], ["o"], name="fc2"),
    ]
    inits = [w_init("w1", 768, 3072), w_init("b1", 3072), w_init("w2", 3072, 768)]
    return model_of(nodes, [vi("x", [1, 128, 768])], inits, domains=(MS,) if with_opset else ())


@pytest.mark.parametrize("with_opset", [True, False])
def test_bias_gelu_with_or_without_its_opset_import(with_opset: bool) -> None:
    doc, g = quiet(_ort_bert_ffn(with_opset))
    assert g["gelu"].output_shape == (128, 3072)
    assert g.macs == 2 * 128 * 768 * 3072 == 603_979_776
    assert g["fc1"].params["bias"] is True  # the fused bias returns to its linear layer
    assert g.params == 768 * 3072 + 3072 + 3072 * 768
    assert counts(doc) == (0, 0)


@pytest.mark.parametrize(("trans_b", "weight"), [(1, True), (1, False), (0, True)])
def test_fused_matmul(trans_b: int, weight: bool) -> None:
    """alpha·A@Bᵀ: A [64, 32], B [48, 32] (transB) or [32, 48]: 64·32·48 MACs."""
    bdims = [48, 32] if trans_b else [32, 48]
    node = helper.make_node(
        "FusedMatMul", ["a", "b"], ["y"], name="fmm", domain=MS, transB=trans_b, alpha=0.125
    )
    ins = [vi("a", [1, 64, 32])] + ([] if weight else [vi("b", [1, *bdims])])
    inits = [w_init("b", *bdims)] if weight else []
    doc, g = quiet(model_of([node], ins, inits, domains=(MS,)))
    assert g["fmm"].output_shape == (64, 48)
    assert g["fmm"].op == ("linear" if weight else "matmul")
    assert g.macs == 64 * 32 * 48 and counts(doc) == (0, 0)


def test_ms_attention() -> None:
    """Attention, S = 16, hidden 64, 4 heads: QKV 16·64·192 + QKᵀ 16·16·64 + AV 16·16·64."""
    node = helper.make_node(
        "Attention", ["x", "w", "b"], ["y"], name="attn", domain=MS, num_heads=4
    )
    inits = [w_init("w", 64, 192), w_init("b", 192)]
    doc, g = quiet(model_of([node], [vi("x", [1, 16, 64])], inits, domains=(MS,)))
    assert [lay.op for lay in g] == ["input", "linear", "attention"]
    assert g["attn"].output_shape == (16, 64)
    assert g.macs == 16 * 64 * 192 + 2 * 16 * 16 * 64 == 229_376
    assert g.params == 64 * 192 + 192 and counts(doc) == (0, 0)


def test_multi_head_attention() -> None:
    """MultiHeadAttention, S = 16, L = 24, D = 64: S·L·D (QKᵀ) + S·L·D (AV)."""
    node = helper.make_node(
        "MultiHeadAttention", ["q", "k", "v"], ["y"], name="mha", domain=MS, num_heads=4
    )
    ins = [vi("q", [1, 16, 64]), vi("k", [1, 24, 64]), vi("v", [1, 24, 64])]
    doc, g = quiet(model_of([node], ins, domains=(MS,)))
    assert g["mha"].op == "attention" and g["mha"].output_shape == (16, 64)
    assert g.macs == 2 * 16 * 24 * 64 == 49_152 and counts(doc) == (0, 0)


def test_skip_layer_normalization_gelu_and_fast_gelu() -> None:
    """MatMul -> SkipLayerNorm(+ residual, bias) -> FastGelu -> Gelu -> MatMul on [10, 32]."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node(
            "SkipLayerNormalization",
            ["h", "x", "g", "be", "b1"],
            ["n", "", "", "sum"],
            name="sln",
            domain=MS,
        ),
        helper.make_node("FastGelu", ["n"], ["f"], name="fgelu", domain=MS),
        helper.make_node("Gelu", ["f"], ["ge"], name="gelu", domain=MS),
        helper.make_node("Add", ["ge", "sum"], ["r"], name="res"),
        helper.make_node("MatMul", ["r", "w2"], ["o"], name="fc2"),
    ]
    inits = [w_init("w1", 32, 32), w_init("g", 32), w_init("be", 32), w_init("b1", 32)]
    inits.append(w_init("w2", 32, 8))
    doc, g = quiet(model_of(nodes, [vi("x", [1, 10, 32])], inits, domains=(MS,)))
    assert g["sln_add"].op == "add" and g["sln"].op == "norm"
    assert g["fgelu"].op == g["gelu"].op == "activation"
    assert g["res"].inputs == ("gelu", "sln_add")
    assert g.macs == 10 * 32 * 32 + 10 * 32 * 8
    assert g.params == 32 * 32 + 32 + 2 * 32 + 32 * 8 and counts(doc) == (0, 0)


def test_quantized_ops() -> None:
    """uint8 [8, 4, 4] -> QLinearGlobalAveragePool -> Flatten -> QLinearMatMul [8, 10] (80
    MACs), and QLinearAdd / QLinearConcat shaped by their rules."""
    sc = [numpy_helper.from_array(np.array(0.1, np.float32), "s")]
    zp = [numpy_helper.from_array(np.array(0, np.uint8), "z")]
    nodes = [
        helper.make_node(
            "QLinearAdd", ["x", "s", "z", "x", "s", "z", "s", "z"], ["a"], name="qadd", domain=MS
        ),
        helper.make_node(
            "QLinearConcat",
            ["s", "z", "a", "s", "z", "x", "s", "z"],
            ["c"],
            name="qcat",
            domain=MS,
            axis=1,
        ),
        helper.make_node(
            "QLinearGlobalAveragePool", ["c", "s", "z", "s", "z"], ["p"], name="qgap", domain=MS
        ),
        helper.make_node("Flatten", ["p"], ["fl"], name="flat"),
        helper.make_node(
            "QLinearMatMul", ["fl", "s", "z", "w", "s", "z", "s", "z"], ["o"], name="qmm"
        ),
    ]
    inits = [*sc, *zp, w_init("w", 8, 10, dtype=np.uint8)]
    doc, g = quiet(model_of(nodes, [vi("x", [1, 4, 4, 4], U8)], inits, domains=(MS,)))
    assert g["qadd"].op == "add" and g["qcat"].op == "concat"
    assert g["qcat"].output_shape == (8, 4, 4)
    assert g["qgap"].op == "pool" and g["qmm"].op == "linear"
    assert g.macs == 8 * 10 and counts(doc) == (0, 0)


def _branch(name: str, weights: list[str]) -> Any:
    """A branch computing x @ W0 @ W1 ... on the outer x [1, 4, 16]."""
    nodes, cur = [], "x"
    for k, w in enumerate(weights):
        out = f"{name}_{k}"
        nodes.append(helper.make_node("MatMul", [cur, w], [out], name=out))
        cur = out
    nodes.append(helper.make_node("Identity", [cur], [f"{name}_out"]))
    return helper.make_graph(nodes, name, [], [vi(f"{name}_out", [1, 4, 16])])


def _if_model(cond_const: bool | None) -> onnx.ModelProto:
    then_b = _branch("then", ["wa"])  # 4·16·16 = 1024 MACs
    else_b = _branch("else", ["wb", "wc"])  # 2048 MACs
    nodes = []
    ins = [vi("x", [1, 4, 16])]
    inits = [w_init(n, 16, 16) for n in ("wa", "wb", "wc")]
    if cond_const is None:
        nodes.append(helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0, name="sum"))
        nodes.append(helper.make_node("Greater", ["s", "zero"], ["cond"], name="gt"))
        inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
    else:
        inits.append(numpy_helper.from_array(np.array(cond_const), "cond"))
    nodes.append(
        helper.make_node(
            "If", ["cond"], ["y"], name="branch", then_branch=then_b, else_branch=else_b
        )
    )
    nodes.append(helper.make_node("Relu", ["y"], ["o"], name="relu"))
    return model_of(nodes, ins, inits)


@pytest.mark.parametrize(("cond", "macs"), [(True, 1024), (False, 2048)])
def test_if_with_a_constant_condition_takes_its_branch(cond: bool, macs: int) -> None:
    doc, g = quiet(_if_model(cond))
    assert g["branch"].inputs == ("x",)
    assert g.macs == macs and counts(doc) == (0, 0)
    assert g["relu"].output_shape == (4, 16)


def test_if_on_a_run_time_condition_counts_the_dearer_branch_and_says_so() -> None:
    doc, g = quiet(_if_model(None))
    assert g["branch"].macs == 2048
    assert "x" in g["branch"].inputs and "gt" in g["branch"].inputs
    assert counts(doc) == (0, 1)
    assert "more expensive branch (else: 2048 MACs" in doc["meta"]["uncertain_layers"]["branch"]


def _loop_model(trips: int | None, early_exit: bool) -> onnx.ModelProto:
    """h <- h @ W (W 16x16) on h [1, 4, 16]: 1024 MACs per iteration."""
    body_nodes = [helper.make_node("MatMul", ["h_in", "w"], ["h_out"], name="step")]
    if early_exit:
        body_nodes.append(helper.make_node("ReduceMax", ["h_out"], ["mx"], keepdims=0))
        body_nodes.append(helper.make_node("Less", ["mx", "lim"], ["c_out"]))
    else:
        body_nodes.append(helper.make_node("Identity", ["c_in"], ["c_out"]))
    body = helper.make_graph(
        body_nodes,
        "body",
        [vi("i", [], I64), vi("c_in", [], TensorProto.BOOL), vi("h_in", [1, 4, 16])],
        [vi("c_out", [], TensorProto.BOOL), vi("h_out", [1, 4, 16])],
    )
    inits = [w_init("w", 16, 16), numpy_helper.from_array(np.array(9.0, np.float32), "lim")]
    inits.append(numpy_helper.from_array(np.array(True), "c0"))
    m_in = ""
    if trips is not None:
        inits.append(numpy_helper.from_array(np.array(trips, np.int64), "m"))
        m_in = "m"
    nodes = [
        helper.make_node("Loop", [m_in, "c0", "x"], ["y"], name="loop", body=body),
        helper.make_node("Relu", ["y"], ["o"], name="relu"),
    ]
    return model_of(nodes, [vi("x", [1, 4, 16])], inits)


def test_loop_with_a_static_trip_count_is_multiplied() -> None:
    doc, g = quiet(_loop_model(5, early_exit=False))
    assert g["loop"].macs == 5 * 4 * 16 * 16
    assert g["relu"].output_shape == (4, 16) and counts(doc) == (0, 0)


@pytest.mark.parametrize(("trips", "macs"), [(5, 5 * 1024), (None, 1024)])
def test_loop_that_may_stop_or_has_no_count_is_flagged(trips: int | None, macs: int) -> None:
    doc, g = quiet(_loop_model(trips, early_exit=True))
    assert g["loop"].macs == macs
    assert counts(doc)[1] == 1


def test_scan_multiplies_its_body_by_the_scanned_length() -> None:
    """Scan over 6 rows of [6, 16]: each row @ W [16, 8] is 128 MACs, 768 in all."""
    body = helper.make_graph(
        [helper.make_node("MatMul", ["row", "w"], ["r_out"], name="proj")],
        "body",
        [vi("row", [16])],
        [vi("r_out", [8])],
    )
    node = helper.make_node("Scan", ["x"], ["ys"], name="scan", body=body, num_scan_inputs=1)
    relu = helper.make_node("Relu", ["ys"], ["o"], name="relu")
    doc, g = quiet(model_of([node, relu], [vi("x", [6, 16])], [w_init("w", 16, 8)]))
    assert g["scan"].macs == 6 * 16 * 8
    assert g["relu"].output_shape == (6, 8) and counts(doc) == (0, 0)


def _dynamic_encoder() -> onnx.ModelProto:
    """A dynamic-axis export: x [batch, sequence, 64] -> MatMul [64, 64]; value_info symbolic."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
        helper.make_node("Foo", ["h"], ["f"], name="foo", domain="custom"),
        helper.make_node("MatMul", ["f", "w2"], ["o"], name="fc2"),
    ]
    stored = [vi("f", ["batch", "sequence", 64])]
    return model_of(
        nodes,
        [vi("x", ["batch", "sequence", 64])],
        [w_init("w", 64, 64), w_init("w2", 64, 32)],
        domains=("custom",),
        value_info=stored,
    )


def test_dims_fix_symbolic_dimensions_also_in_the_files_value_info() -> None:
    with pytest.raises(GraphError, match=r"--dim sequence=VALUE"):
        quiet(_dynamic_encoder())
    doc, g = quiet(_dynamic_encoder(), dims={"sequence": 32})
    assert g["x"].output_shape == (32, 64)
    assert g.macs == 32 * 64 * 64 + 32 * 64 * 32
    assert counts(doc) == (0, 1)  # foo's shape comes from the file; its work is unknown


def test_conv1d_and_conv3d_are_convolutions() -> None:
    """Conv1d [4, 32] k3 p1 -> 8 channels: 8·32·4·3; Conv3d [2, 8, 8, 8] k3 p1 -> 4: 4·512·54."""
    c1 = helper.make_node("Conv", ["x", "w1"], ["y"], name="c1", kernel_shape=[3], pads=[1, 1])
    p1 = helper.make_node("MaxPool", ["y"], ["z"], name="p1", kernel_shape=[2], strides=[2])
    doc, g = quiet(model_of([c1, p1], [vi("x", [1, 4, 32])], [w_init("w1", 8, 4, 3)]))
    assert g["c1"].op == "conv" and g["c1"].output_shape == (8, 32)
    assert g["c1"].macs == 8 * 32 * 4 * 3
    assert g["p1"].op == "pool" and g["p1"].output_shape == (8, 16)
    assert g["p1"].vector_ops == 8 * 32
    c3 = helper.make_node(
        "Conv", ["x", "w3"], ["y"], name="c3", kernel_shape=[3, 3, 3], pads=[1] * 6
    )
    p3 = helper.make_node(
        "AveragePool", ["y"], ["z"], name="p3", kernel_shape=[2, 2, 2], strides=[2, 2, 2]
    )
    doc, g = quiet(model_of([c3, p3], [vi("x", [1, 2, 8, 8, 8])], [w_init("w3", 4, 2, 3, 3, 3)]))
    assert g["c3"].op == "conv" and g["c3"].output_shape == (4, 8, 8, 8)
    assert g["c3"].macs == 4 * 512 * 2 * 27 == 110_592
    assert g["p3"].op == "pool" and g["p3"].output_shape == (4, 4, 4, 4)
    assert g["p3"].vector_ops == 4 * 512
    assert counts(doc) == (0, 0)


def test_ceil_mode_and_asymmetric_pools() -> None:
    """5x5 input. ceil_mode k2 s2: 3x3 windows reading 2+2+1 rows and columns -> 25 reads.
    Pads [1, 1, 0, 0] k3 s2: 2x2 windows reading 2+3 rows and columns -> 25 reads."""
    ceil = helper.make_node(
        "MaxPool", ["x"], ["a"], name="ceil", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1
    )
    asym = helper.make_node(
        "AveragePool",
        ["x"],
        ["b"],
        name="asym",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 0, 0],
    )
    cat = helper.make_node("Concat", ["a", "a"], ["c"], name="keep", axis=1)
    doc, g = quiet(model_of([ceil, asym, cat], [vi("x", [1, 1, 5, 5])], outputs=["c", "b"]))
    assert g["ceil"].op == "pool" and g["ceil"].output_shape == (1, 3, 3)
    assert g["ceil"].vector_ops == 25
    assert g["asym"].op == "pool" and g["asym"].output_shape == (1, 2, 2)
    assert g["asym"].vector_ops == 25
    assert counts(doc) == (0, 0)


def test_pool_windows_are_clipped_to_the_input() -> None:
    """A 5x5 window with stride 5 and pads 1 over a 3x3 map reads the 9 elements, not 25."""
    node = helper.make_node(
        "AveragePool", ["x"], ["y"], name="gap", kernel_shape=[5, 5], strides=[5, 5], pads=[1] * 4
    )
    _, g = quiet(model_of([node], [vi("x", [1, 7, 3, 3])]))
    assert g["gap"].output_shape == (7, 1, 1)
    assert g["gap"].vector_ops == 7 * 9


def test_broadcast_elementwise_is_an_add() -> None:
    """[8, 4, 4] * [8, 1, 1] (a squeeze-excite gate): 128 products, op mul, not generic."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
        helper.make_node("Sigmoid", ["g"], ["s"], name="gate"),
        helper.make_node("Mul", ["x", "s"], ["y"], name="scale"),
    ]
    _, g = quiet(model_of(nodes, [vi("x", [1, 8, 4, 4])]))
    assert g["scale"].op == "mul" and g["scale"].output_shape == (8, 4, 4)
    assert g["scale"].vector_ops == 128


def test_strided_slice_is_a_split_with_a_step() -> None:
    """Every other column of [8, 16] -> [8, 8] @ [8, 4]: 8·8·4 MACs."""
    inits = [const("st", [0]), const("en", [16]), const("ax", [2]), const("sp", [2])]
    inits.append(w_init("w", 8, 4))
    nodes = [
        helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"], name="every2"),
        helper.make_node("MatMul", ["s", "w"], ["y"], name="fc"),
    ]
    doc, g = quiet(model_of(nodes, [vi("x", [1, 8, 16])], inits))
    assert g["every2"].op == "split" and g["every2"].params["step"] == 2
    assert g["every2"].output_shape == (8, 8)
    assert g.macs == 8 * 8 * 4 and counts(doc) == (0, 0)


def test_folding_never_materialises_a_large_constant() -> None:
    """A ConstantOfShape weight of 2 M elements stays a shape: the import allocates < 2 MB."""
    nodes = [
        helper.make_node(
            "ConstantOfShape", ["ws"], ["w"], value=helper.make_tensor("v", F, [1], [0.5])
        ),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="fc"),
    ]
    model = model_of(nodes, [vi("x", [1, 1024])], [const("ws", [1024, 2048])])
    tracemalloc.start()
    try:
        _, g = quiet(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert g["fc"].op == "linear" and g.macs == 1024 * 2048
    assert peak < 2_000_000


def test_light_vgg19_imports_without_materialising_its_weights() -> None:
    """The onnx package's 9 KB VGG-19 (weights as ConstantOfShape): 19.63 GMACs, 143.7 M
    parameters (the published figures), without allocating its 575 MB of weights."""
    path = BACKEND_DATA / "light" / "light_vgg19.onnx"
    if not path.exists():
        pytest.skip("this onnx build ships no light models")
    tracemalloc.start()
    try:
        g = parse_graph(read_onnx(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert g.macs == 19_632_062_464 and g.params == 143_667_240
    assert peak < 16_000_000


@pytest.mark.parametrize("via", ["Transpose", "Gemm"])
def test_tied_weights_are_counted_once(via: str) -> None:
    """A GPT-style LM head reusing the token table [100, 16]: its 1600 parameters count once;
    the head's MACs are 8·16·100."""
    nodes = [
        helper.make_node("Gather", ["wte", "ids"], ["e"], name="embed"),
        helper.make_node("Relu", ["e"], ["h"], name="body"),
    ]
    if via == "Transpose":
        nodes.append(helper.make_node("Transpose", ["wte"], ["wte_t"], perm=[1, 0]))
        nodes.append(helper.make_node("MatMul", ["h", "wte_t"], ["logits"], name="lm_head"))
    else:
        nodes.append(helper.make_node("Gemm", ["h2", "wte"], ["logits"], name="lm_head", transB=1))
        nodes.insert(2, helper.make_node("Reshape", ["h", "flat"], ["h2"], name="flat"))
    inits = [w_init("wte", 100, 16), const("flat", [8, 16])]
    doc, g = quiet(model_of(nodes, [vi("ids", [1, 8], I64)], inits))
    assert g.params == 100 * 16
    assert g["lm_head"].op == "matmul" and g["lm_head"].macs == 8 * 16 * 100
    assert g["lm_head_tied_weight"].inputs == ("embed",)
    assert g.macs == 8 * 16 * 100 and counts(doc) == (0, 0)


# -- property: a random chain of supported ops gives the MACs of the direct formula ---------


@st.composite
def conv_chains(draw: st.DrawFn) -> tuple[onnx.ModelProto, int]:
    """A random chain Conv/Relu/MaxPool/BatchNorm/Add on [C, H, W], then Flatten and Gemm."""
    c = draw(st.integers(1, 6))
    h = draw(st.integers(4, 12))
    w = draw(st.integers(4, 12))
    x_shape = [1, c, h, w]
    nodes: list[Any] = []
    inits: list[TensorProto] = []
    cur, macs = "x", 0
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "relu", "pool", "bn", "add"]))
        out = f"t{i}"
        if kind == "conv":
            k = draw(st.integers(1, 3))
            s = draw(st.integers(1, 2))
            p = draw(st.integers(0, k // 2))
            groups = draw(st.sampled_from([g for g in (1, c) if c % g == 0]))
            co = draw(st.integers(1, 4)) * groups
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            if ho < 1 or wo < 1:
                continue
            inits.append(w_init(f"w{i}", co, c // groups, k, k))
            nodes.append(
                helper.make_node(
                    "Conv",
                    [cur, f"w{i}"],
                    [out],
                    kernel_shape=[k, k],
                    strides=[s, s],
                    pads=[p] * 4,
                    group=groups,
                )
            )
            macs += co * ho * wo * (c // groups) * k * k
            c, h, w = co, ho, wo
        elif kind == "pool":
            if h < 2 or w < 2:
                continue
            nodes.append(
                helper.make_node("MaxPool", [cur], [out], kernel_shape=[2, 2], strides=[2, 2])
            )
            h, w = h // 2, w // 2
        elif kind == "bn":
            names = [f"bn{i}_{j}" for j in range(4)]
            inits.extend(w_init(n, c) for n in names)
            nodes.append(helper.make_node("BatchNormalization", [cur, *names], [out]))
        elif kind == "add":
            nodes.append(helper.make_node("Add", [cur, cur], [out]))
        else:
            nodes.append(helper.make_node("Relu", [cur], [out]))
        cur = out
    n = draw(st.integers(1, 10))
    inits.append(w_init("fc", c * h * w, n))
    nodes.append(helper.make_node("Flatten", [cur], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", "fc"], ["y"]))
    macs += c * h * w * n
    return model_of(nodes, [vi("x", x_shape)], inits), macs


@settings(max_examples=40, deadline=None, derandomize=True)
@given(conv_chains())
def test_random_chains_import_with_the_macs_of_the_direct_formula(
    case: tuple[onnx.ModelProto, int],
) -> None:
    model, macs = case
    doc, g = quiet(model)
    assert g.macs == macs
    assert counts(doc) == (0, 0)
    assert all(lay.op != "generic" for lay in g)


# -- the command line and the upload API ----------------------------------------------------


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    from isosched.cli import main

    monkeypatch.setattr(sys, "argv", ["isosched", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_dim_strict_and_one_warning_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "enc.onnx"
    onnx.save(_dynamic_encoder(), str(src))
    out = tmp_path / "enc.json"
    code, _, err = cli(monkeypatch, capsys, "import-onnx", str(src), "-o", str(out))
    assert code == 2 and "--dim sequence=VALUE" in err and not out.exists()
    code, _, err = cli(
        monkeypatch, capsys, "import-onnx", str(src), "-o", str(out), "--dim", "sequence=32"
    )
    assert code == 0
    warned = [line for line in err.splitlines() if "warning" in line]
    assert len(warned) == 1
    assert "0 layers have guessed shapes and 1 layers unknown compute" in warned[0]
    assert "custom::Foo" in warned[0]
    doc = json.loads(out.read_text())
    assert doc["meta"]["unknown_compute_layers"] == 1 and doc["meta"]["guessed_shape_layers"] == 0
    code, shown, _ = cli(monkeypatch, capsys, "models", "show", str(out), "--json")
    report = json.loads(shown)
    assert code == 0 and report["macs"] == 32 * 64 * 64 + 32 * 64 * 32
    assert (report["guessed_shape_layers"], report["unknown_compute_layers"]) == (0, 1)
    assert [r["id"] for r in report["layers"] if "uncertain" in r] == ["foo"]
    code, shown, _ = cli(monkeypatch, capsys, "models", "show", str(out))
    assert "uncertain: 0 layers have guessed shapes and 1 layers unknown compute" in shown
    out.unlink()
    code, _, err = cli(
        monkeypatch,
        capsys,
        "import-onnx",
        str(src),
        "-o",
        str(out),
        "--dim",
        "sequence=32",
        "--strict",
    )
    assert code == 2 and "refused (--strict)" in err and not out.exists()
    code, _, err = cli(
        monkeypatch, capsys, "import-onnx", str(src), "-o", str(out), "--dim", "sequence"
    )
    assert code == 2 and "NAME=VALUE" in err


def test_cli_strict_passes_a_model_known_for_sure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "ffn.onnx"
    onnx.save(_ort_bert_ffn(with_opset=False), str(src))
    out = tmp_path / "ffn.json"
    code, _, err = cli(monkeypatch, capsys, "import-onnx", str(src), "-o", str(out), "--strict")
    assert code == 0 and "warning" not in err
    code, shown, _ = cli(monkeypatch, capsys, "models", "show", str(out))
    assert "uncertain: none" in shown


def test_upload_takes_dims_and_answers_the_counts(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, max_body_bytes=1 << 20)
    client = TestClient(create_app(settings))
    data = _dynamic_encoder().SerializeToString()
    onnx_type = {"content-type": "application/onnx"}
    r = client.post("/v1/graphs", content=data, headers=onnx_type)
    assert r.status_code == 422 and "sequence" in r.json()["detail"]
    r = client.post("/v1/graphs?dim=sequence=32", content=data, headers=onnx_type)
    assert r.status_code == 201
    body = r.json()
    assert body["macs"] == 32 * 64 * 64 + 32 * 64 * 32
    assert (body["guessed_shape_layers"], body["unknown_compute_layers"]) == (0, 1)
    assert any("unknown compute" in w for w in body["warnings"])
    stored = client.get(f"/v1/graphs/{body['id']}").json()
    assert stored["meta"]["unknown_compute_layers"] == 1
    assert "foo" in stored["meta"]["uncertain_layers"]
    r = client.post("/v1/graphs?dim=sequence=32&strict=true", content=data, headers=onnx_type)
    assert r.status_code == 422 and "strict" in r.json()["detail"]
    r = client.post("/v1/graphs?dim=sequence=x", content=data, headers=onnx_type)
    assert r.status_code == 422 and "1..9,999,999,999" in r.json()["detail"]
    ok = conv_chain("input").SerializeToString()
    r = client.post("/v1/graphs?strict=true", content=ok, headers=onnx_type)
    assert r.status_code == 201 and r.json()["unknown_compute_layers"] == 0


def _export_script() -> Any:
    """``models/export_onnx.py`` as a module (it imports torch only to build and export)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_onnx", ROOT / "models" / "export_onnx.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_weight_free_export_keeps_the_initializers_that_shape_the_graph(tmp_path: Path) -> None:
    """A U-Net step: Conv [8, 4, 3, 3] on [4, 16, 16], Resize x2 (float scales), Reshape,
    Conv [4, 8, 3, 3] on the upsampled [8, 32, 32]: 8·256·36 + 4·1024·72 MACs."""
    nodes = [
        helper.make_node(
            "Conv", ["x", "w1"], ["c"], name="down", kernel_shape=[3, 3], pads=[1] * 4
        ),
        helper.make_node("Resize", ["c", "", "scales"], ["u"], name="up", mode="nearest"),
        helper.make_node("Reshape", ["u", "target"], ["r"], name="same"),
        helper.make_node(
            "Conv", ["r", "w2"], ["y"], name="conv", kernel_shape=[3, 3], pads=[1] * 4
        ),
    ]
    inits = [
        w_init("w1", 8, 4, 3, 3),
        w_init("w2", 4, 8, 3, 3),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        const("target", [1, 8, 32, 32]),
    ]
    model = model_of(nodes, [vi("x", [1, 4, 16, 16])], inits)
    macs = 8 * 256 * 4 * 9 + 4 * 1024 * 8 * 9
    assert quiet(model)[1].macs == macs
    script = _export_script()
    stripped = script.strip_weights(model, tmp_path)
    kept = {t.name for t in stripped.graph.initializer}
    assert kept == {"scales", "target"}
    assert {"w1", "w2"} <= {i.name for i in stripped.graph.input}
    doc, g = quiet(stripped)
    assert g.macs == macs and g["up"].output_shape == (8, 32, 32)
    assert counts(doc) == (0, 0) and g.params == 8 * 36 + 4 * 72


@pytest.mark.parametrize("weights", ["init", "input"])
def test_embed_layer_normalization(weights: str) -> None:
    """ORT's BERT embedding: word [100, 16], position [32, 16], segment [2, 16] tables, a norm
    of width 16, then a MatMul [16, 4] on 8 tokens: 8·16·4 MACs, 100·16 + 32·16 + 2·16 +
    2·16 + 16·4 parameters."""
    tables = {"word": (100, 16), "pos": (32, 16), "seg": (2, 16), "gamma": (16,), "beta": (16,)}
    node = helper.make_node(
        "EmbedLayerNormalization",
        ["ids", "segs", "word", "pos", "seg", "gamma", "beta"],
        ["e", "mask_index"],
        name="emb",
        domain=MS,
    )
    fc = helper.make_node("MatMul", ["e", "w"], ["o"], name="fc")
    ins = [vi("ids", [1, 8], I64), vi("segs", [1, 8], I64)]
    inits = [w_init("w", 16, 4)]
    if weights == "init":
        inits += [w_init(n, *d) for n, d in tables.items()]
    else:
        ins += [vi(n, list(d)) for n, d in tables.items()]
    doc, g = quiet(model_of([node, fc], ins, inits, domains=(MS,)))
    assert g["emb_word"].op == "embedding" and g["emb"].op == "norm"
    assert g["emb"].output_shape == (8, 16)
    assert g.macs == 8 * 16 * 4 and counts(doc) == (0, 0)
    assert g.params == 100 * 16 + 32 * 16 + 2 * 16 + 2 * 16 + 16 * 4


def test_a_name_that_is_not_utf8_is_a_graph_error() -> None:
    """Protobuf hands out bytes for such a string: refused with a reason, not a traceback."""
    node = helper.make_node("Relu", ["x"], ["y"], domain="zzzzqq")
    data = model_of([node], [vi("x", [1, 4])]).SerializeToString()
    bad = data.replace(b"zzzzqq", b"zz\xa0\xffqq")
    with pytest.raises(GraphError, match="domain that is not valid UTF-8"):
        parse_onnx(bad, "m")
    model = model_of([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1, 4])])
    model.producer_name = "pppppp"
    bad = model.SerializeToString().replace(b"pppppp", b"pp\xa0\xffpp")
    with pytest.raises(GraphError, match="producer that is not valid UTF-8"):
        parse_onnx(bad, "m")
