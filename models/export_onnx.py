"""Regenerate the weight-free ONNX exports committed in ``models/onnx/``.

The exports are structural: every weight is turned into a typed graph input (name, data type and
dimensions kept, values dropped), so each file is well under 200 KB and carries no parameters.
Small integer, boolean and scalar constants (reshape targets, slice bounds, the attention mask,
the attention scale) and every small tensor read where an operator takes a shape (``Resize``
scales, ``Reshape`` targets, ``Pad`` and ``Slice`` operands) keep their values, since shape
inference needs them. Nothing is downloaded:
the models are built from their default ``transformers`` configurations with random weights.

How to run it (from the repository root, in a virtual environment of its own; the library and
its tests never need these packages)::

    pip install -e .[models]      # torch==2.13.0, transformers==5.24.0, onnxscript==0.7.2
    python models/export_onnx.py  # writes models/onnx/resnet50.onnx and bert_base.onnx

Options: ``--out DIR`` writes elsewhere, ``--only NAME`` exports one model, ``--no-optimize``
keeps the exporter's raw graph (separate BatchNormalization nodes, unfolded shape arithmetic).

Models
------
resnet50
    ``transformers.ResNetModel(ResNetConfig())``: the ResNet-50 backbone and its global average
    pool (no classifier head); input ``pixel_values`` float32 ``[1, 3, 224, 224]``. The exporter's
    optimiser folds each eval-mode BatchNorm into the preceding convolution (which gains a bias).
bert_base
    ``transformers.BertModel(BertConfig())``: the BERT-base encoder and pooler; input
    ``input_ids`` int64 ``[1, 128]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import onnx
import onnx.external_data_helper

if TYPE_CHECKING:  # torch and transformers are imported where a model is built or exported
    import torch

OUT_DIR = Path(__file__).resolve().parent / "onnx"
MAX_BYTES = 200 * 1024
PINS = {"torch": "2.13.0", "transformers": "5.24.0"}

Example = tuple["torch.nn.Module", tuple["torch.Tensor", ...], list[str], list[str]]


def _outputs(model: Any) -> Any:
    """Wrap a ``transformers`` model to return ``last_hidden_state`` and ``pooler_output``."""
    import torch

    class Outputs(torch.nn.Module):  # type: ignore[misc]
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.model = inner

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.model(x, return_dict=True)
            return out["last_hidden_state"], out["pooler_output"]

    return Outputs(model)


def build_resnet50() -> Example:
    import torch
    import transformers

    model = _outputs(transformers.ResNetModel(transformers.ResNetConfig())).eval()
    x = torch.randn(1, 3, 224, 224)
    return model, (x,), ["pixel_values"], ["last_hidden_state", "pooler_output"]


def build_bert_base() -> Example:
    import torch
    import transformers

    model = _outputs(transformers.BertModel(transformers.BertConfig())).eval()
    ids = torch.randint(0, transformers.BertConfig().vocab_size, (1, 128), dtype=torch.int64)
    return model, (ids,), ["input_ids"], ["last_hidden_state", "pooler_output"]


MODELS: dict[str, Callable[[], Example]] = {
    "resnet50": build_resnet50,
    "bert_base": build_bert_base,
}

_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.BFLOAT16,
    onnx.TensorProto.DOUBLE,
}


#: Operand positions that shape the graph: the values there decide tensor shapes, so a
#: weight-free export must keep them even when they are floating-point tensors (``Resize``
#: scales above all).
SHAPING_OPERANDS: dict[str, tuple[int, ...]] = {
    "Resize": (1, 2, 3),
    "Upsample": (1,),
    "Reshape": (1,),
    "Expand": (1,),
    "Tile": (1,),
    "Slice": (1, 2, 3, 4),
    "Pad": (1, 2, 3),
    "ConstantOfShape": (0,),
    "Range": (0, 1, 2),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "Split": (1,),
    "TopK": (1,),
    "OneHot": (1,),
    "CenterCropPad": (1,),
}

#: Largest tensor kept for shaping the graph (shape operands are a handful of numbers).
MAX_SHAPING_ELEMS = 1024


def shaping_initializers(graph: onnx.GraphProto) -> set[str]:
    """Initializers read at an operand position that decides a shape (see SHAPING_OPERANDS)."""
    found: set[str] = set()
    for node in graph.node:
        for pos in SHAPING_OPERANDS.get(node.op_type, ()):
            if pos < len(node.input) and node.input[pos]:
                found.add(node.input[pos])
    return found


def is_structural(t: onnx.TensorProto, shaping: set[str] | None = None) -> bool:
    """Whether an initializer is a structural constant (kept) rather than a weight (dropped).

    Integer and boolean tensors (reshape targets, slice bounds, index buffers, masks), float
    scalars (attention scale, fill values) and small tensors that shape the graph (``Resize``
    scales, ``Reshape`` targets: ``shaping``) are needed by shape inference and weigh nothing;
    every other floating-point tensor is a weight.
    """
    if shaping and t.name in shaping and math.prod(t.dims) <= MAX_SHAPING_ELEMS:
        return True
    return t.data_type not in _FLOAT_TYPES or math.prod(t.dims) <= 1


def strip_weights(model: onnx.ModelProto, data_dir: Path) -> onnx.ModelProto:
    """Turn weight initializers into typed graph inputs without data; drop node metadata."""
    graph = model.graph
    inits = list(graph.initializer)
    shaping = shaping_initializers(graph)
    del graph.initializer[:]
    existing = {i.name for i in graph.input}
    for t in inits:
        if t.name in existing:
            continue
        if is_structural(t, shaping):
            if t.data_location == onnx.TensorProto.EXTERNAL:
                # Bring the few structural values back inline from the external data file.
                onnx.external_data_helper.load_external_data_for_tensor(t, str(data_dir))
                t.data_location = onnx.TensorProto.DEFAULT
                del t.external_data[:]
            graph.initializer.append(t)
        else:
            graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for f in model.functions:
        for node in f.node:
            del node.metadata_props[:]
    del graph.value_info[:]
    del model.metadata_props[:]
    graph.doc_string = ""
    model.doc_string = ""
    return model


def export(name: str, out_dir: Path, optimize: bool = True) -> Path:
    """Export one model to ``out_dir/<name>.onnx`` and return the path."""
    import torch
    import transformers

    torch.manual_seed(0)
    module, args, in_names, out_names = MODELS[name]()
    # Distinct random values for every parameter, so that the exporter's optimiser does not
    # merge equal-valued initializers (all-zero biases, all-one norm scales) into one.
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.02)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        tmp_path = Path(tmp) / f"{name}.onnx"
        torch.onnx.export(
            module,
            args,
            str(tmp_path),
            dynamo=True,
            external_data=True,
            input_names=in_names,
            output_names=out_names,
            optimize=optimize,
        )
        model = onnx.load(str(tmp_path), load_external_data=False)
        model = strip_weights(model, Path(tmp))
    model.producer_name = "isosched models/export_onnx.py"
    model.producer_version = (
        f"torch {torch.__version__.split('+')[0]}, transformers {transformers.__version__}"
    )
    onnx.checker.check_model(model)
    model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    onnx.save(model, str(path))
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size:,} bytes, over the {MAX_BYTES:,} byte budget")
    print(f"wrote {path} ({size:,} bytes, {len(model.graph.node)} nodes)")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate the weight-free ONNX exports.")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    ap.add_argument("--only", choices=sorted(MODELS), help="export just this model")
    ap.add_argument(
        "--no-optimize", action="store_true", help="skip the exporter's graph optimiser"
    )
    ns = ap.parse_args(argv)
    import torch
    import transformers

    found = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__}
    for pkg, want in PINS.items():
        if found[pkg] != want:
            print(f"warning: {pkg} {found[pkg]} is not the pinned {want}", file=sys.stderr)
    for name in [ns.only] if ns.only else list(MODELS):
        export(name, ns.out, optimize=not ns.no_optimize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
