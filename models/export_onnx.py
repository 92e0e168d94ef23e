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


def build_unet_dynamic() -> Example:
    """U-Net with bilinear up-sampling, exported with symbolic ``height`` and ``width``.

    The common PyTorch form of Ronneberger et al.'s U-Net: double 3x3 convolutions (batch norm,
    ReLU), four 2x2 max-pool contractions (64, 128, 256, 512, 512 channels), four expansions by
    bilinear ``Upsample(scale_factor=2)`` (an ONNX ``Resize`` whose scales are a float
    initializer), padding to the skip's size and concatenation, then a 1x1 convolution to 2
    classes. Example input ``[1, 3, 256, 512]``.
    """
    import torch
    import torch.nn.functional as fn
    from torch import nn

    def double_conv(cin: int, cout: int, mid: int | None = None) -> nn.Module:
        mid = mid or cout
        return nn.Sequential(
            nn.Conv2d(cin, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
            nn.Conv2d(mid, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    class Up(nn.Module):  # type: ignore[misc]
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = double_conv(cin, cout, cin // 2)

        def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
            x = self.up(x)
            dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
            x = fn.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
            return self.conv(torch.cat([skip, x], dim=1))

    class UNet(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.inc = double_conv(3, 64)
            self.downs = nn.ModuleList(
                nn.Sequential(nn.MaxPool2d(2), double_conv(cin, cout))
                for cin, cout in [(64, 128), (128, 256), (256, 512), (512, 512)]
            )
            self.ups = nn.ModuleList(
                Up(cin, cout) for cin, cout in [(1024, 256), (512, 128), (256, 64), (128, 64)]
            )
            self.head = nn.Conv2d(64, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = [self.inc(x)]
            for down in self.downs:
                skips.append(down(skips[-1]))
            y = skips.pop()
            for up in self.ups:
                y = up(y, skips.pop())
            return self.head(y)

    x = torch.randn(1, 3, 256, 512)
    return UNet().eval(), (x,), ["image"], ["logits"]


MODELS: dict[str, Callable[[], Example]] = {
    "resnet50": build_resnet50,
    "bert_base": build_bert_base,
    "unet_dynamic": build_unet_dynamic,
}

#: Symbolic input dimensions per model (``torch.export`` dynamic shapes, by axis).
DYNAMIC_AXES: dict[str, dict[int, tuple[str, int, int]]] = {
    "unet_dynamic": {2: ("height", 32, 4096), 3: ("width", 32, 4096)},
}

#: Models built without ``transformers``.
TORCH_ONLY = frozenset({"unet_dynamic"})

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

    torch.manual_seed(0)
    module, args, in_names, out_names = MODELS[name]()
    dynamic = None
    if name in DYNAMIC_AXES:
        axes = {
            k: torch.export.Dim(sym, min=lo, max=hi)
            for k, (sym, lo, hi) in DYNAMIC_AXES[name].items()
        }
        dynamic = (axes,)
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
            dynamic_shapes=dynamic,
        )
        model = onnx.load(str(tmp_path), load_external_data=False)
        model = strip_weights(model, Path(tmp))
    model.producer_name = "isosched models/export_onnx.py"
    model.producer_version = f"torch {torch.__version__.split('+')[0]}"
    if name not in TORCH_ONLY:
        import transformers

        model.producer_version += f", transformers {transformers.__version__}"
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

    names = [ns.only] if ns.only else list(MODELS)
    found = {"torch": torch.__version__.split("+")[0]}
    if set(names) - TORCH_ONLY:
        import transformers

        found["transformers"] = transformers.__version__
    for pkg, want in PINS.items():
        if pkg in found and found[pkg] != want:
            print(f"warning: {pkg} {found[pkg]} is not the pinned {want}", file=sys.stderr)
    for name in names:
        export(name, ns.out, optimize=not ns.no_optimize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
