"""ONNX import: hand-built models with hand-computed MACs, and the committed real exports."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from isosched.errors import GraphError
from isosched.graph import Graph, parse_graph
from isosched.io.onnx import CONVERTERS, UnknownOpWarning, onnx_to_graph_doc, read_onnx

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
    with pytest.raises(GraphError, match="symbolic dimension 'seq'"):
        onnx_to_graph_doc(model, "m")
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
