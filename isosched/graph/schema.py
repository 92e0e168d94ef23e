"""The ``isosched.graph/v1`` file format as strict pydantic models.

One model per op, joined by a discriminated union on ``op``, so that the JSON Schema printed by
``isosched schema graph`` documents every op's fields and a bad field is reported by name.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DTYPE_BYTES",
    "GRAPH_SCHEMA",
    "MAX_DIM",
    "MAX_LAYERS",
    "MAX_TENSOR_ELEMENTS",
    "GraphFile",
    "LayerSpec",
]

GRAPH_SCHEMA = "isosched.graph/v1"

#: Caps that reject absurd inputs with a clear message instead of exhausting memory.
MAX_LAYERS = 1_000_000
MAX_DIM = 1 << 31
MAX_TENSOR_ELEMENTS = 10**11

#: Bytes per element of each supported data type.
DTYPE_BYTES: dict[str, int] = {"int4": 1, "int8": 1, "fp8": 1, "fp16": 2, "bf16": 2, "fp32": 4}

Dim = Annotated[int, Field(ge=1, le=MAX_DIM)]
NonNeg = Annotated[int, Field(ge=0, le=MAX_DIM)]
IntOrPair = Dim | tuple[Dim, Dim]
NonNegOrPair = NonNeg | tuple[NonNeg, NonNeg]
#: A window field of a 1-, 2- or 3-D convolution or pooling: one value for every axis, or one
#: per spatial axis.
Window = Dim | tuple[Dim] | tuple[Dim, Dim] | tuple[Dim, Dim, Dim]
NonNegWindow = NonNeg | tuple[NonNeg] | tuple[NonNeg, NonNeg] | tuple[NonNeg, NonNeg, NonNeg]
Count = Annotated[int, Field(ge=0, le=10**18)]
LayerId = Annotated[str, Field(min_length=1, max_length=256)]


class _Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: LayerId
    inputs: list[LayerId] = Field(default_factory=list, max_length=4096)
    input_shape: list[Dim] | None = Field(
        default=None,
        max_length=8,
        description="Shape of the graph input this layer reads, for layers with no inputs.",
    )
    name: str | None = Field(default=None, max_length=1024, description="Free-form label.")


class InputLayer(_Layer):
    """A graph input of a given shape (batch excluded)."""

    op: Literal["input"]
    shape: list[Dim] = Field(min_length=1, max_length=8)


class ConvLayer(_Layer):
    """Convolution over a ``[C, H, W]`` tensor (2-D), ``[C, L]`` (1-D) or ``[C, D, H, W]`` (3-D).

    Grouped and depthwise via ``groups``. Window fields hold one value for every spatial axis or
    one per axis.
    """

    op: Literal["conv"]
    out_channels: Dim
    kernel: Window
    stride: Window = 1
    padding: NonNegWindow = 0
    dilation: Window = 1
    groups: Dim = 1
    bias: bool = False


class ConvTransposeLayer(_Layer):
    """2-D transposed convolution (deconvolution)."""

    op: Literal["conv_transpose"]
    out_channels: Dim
    kernel: IntOrPair
    stride: IntOrPair = 1
    padding: NonNegOrPair = 0
    output_padding: NonNegOrPair = 0
    groups: Dim = 1
    bias: bool = False


class LinearLayer(_Layer):
    """Fully connected layer (linear, gemm) over the last dimension."""

    op: Literal["linear"]
    out_features: Dim
    bias: bool = False


class MatmulLayer(_Layer):
    """Product of two activations ``A [..., M, K] x B [..., K, N]`` (no weights)."""

    op: Literal["matmul"]
    transpose_b: bool = False


class AttentionLayer(_Layer):
    """Scaled dot-product attention core (QK^T, softmax, AV) without the projections."""

    op: Literal["attention"]
    heads: Dim
    causal: bool = False


class PoolLayer(_Layer):
    """Max or average pooling over ``[C, H, W]``, ``[C, L]`` or ``[C, D, H, W]``.

    ``global`` pools the whole plane. ``padding`` pads the start of each axis and
    ``padding_end`` (default: the same) its end; ``ceil_mode`` keeps a last, partial window.
    Windows are clipped to the input: padding is never read.
    """

    op: Literal["pool"]
    kind: Literal["max", "avg"] = "max"
    kernel: Window = 1
    stride: Window | None = None
    padding: NonNegWindow = 0
    padding_end: NonNegWindow | None = None
    ceil_mode: bool | None = None
    global_: bool = Field(default=False, alias="global")

    @model_validator(mode="after")
    def _default_stride(self) -> PoolLayer:
        if self.stride is None:
            object.__setattr__(self, "stride", self.kernel)
        return self


class AddLayer(_Layer):
    """Elementwise sum of two or more tensors of one shape."""

    op: Literal["add"]


class MulLayer(_Layer):
    """Elementwise product of two or more tensors of one shape."""

    op: Literal["mul"]


class ConcatLayer(_Layer):
    """Concatenation along ``axis``."""

    op: Literal["concat"]
    axis: int = 0


class SplitLayer(_Layer):
    """One slice of ``size`` elements along ``axis``: ``start``, ``start + step``, ...

    ``step`` defaults to 1 (the contiguous slice ``[start, start + size)``).
    """

    op: Literal["split"]
    axis: int = 0
    start: NonNeg = 0
    size: Dim
    step: Dim | None = None


class NormLayer(_Layer):
    """Batch, layer, group, instance or RMS normalisation."""

    op: Literal["norm"]
    kind: Literal["batch", "layer", "group", "instance", "rms"] = "batch"
    axis: int | None = None


class ActivationLayer(_Layer):
    """Pointwise non-linearity."""

    op: Literal["activation"]
    kind: str = Field(default="relu", max_length=64)


class SoftmaxLayer(_Layer):
    """Softmax along ``axis``."""

    op: Literal["softmax"]
    axis: int = -1


class EmbeddingLayer(_Layer):
    """Table lookup of ``num_embeddings`` rows of width ``dim``."""

    op: Literal["embedding"]
    num_embeddings: Dim
    dim: Dim


class ResizeLayer(_Layer):
    """Upsample or resize a ``[C, H, W]`` tensor by ``scale`` or to ``size``."""

    op: Literal["resize"]
    scale: IntOrPair | None = None
    size: IntOrPair | None = None
    mode: str = Field(default="nearest", max_length=32)


class ReshapeLayer(_Layer):
    """Reshape (no compute); one dimension may be -1."""

    op: Literal["reshape"]
    shape: list[Annotated[int, Field(ge=-1, le=MAX_DIM)]] = Field(min_length=1, max_length=8)


class FlattenLayer(_Layer):
    """Flatten the dimensions from ``start`` on (no compute)."""

    op: Literal["flatten"]
    start: int = 0


class TransposeLayer(_Layer):
    """Permute dimensions (no compute)."""

    op: Literal["transpose"]
    perm: list[Annotated[int, Field(ge=0, le=7)]] = Field(min_length=1, max_length=8)


class IdentityLayer(_Layer):
    """Pass-through (dropout at inference, casts)."""

    op: Literal["identity"]


class GenericLayer(_Layer):
    """Any other operator, with its output shape and work given explicitly."""

    op: Literal["generic"]
    kind: str = Field(default="unknown", max_length=128)
    shape: list[Dim] = Field(min_length=1, max_length=8)
    macs: Count = 0
    weight_elems: Count = 0
    vector_ops: Count | None = None


LayerSpec = Annotated[
    InputLayer
    | ConvLayer
    | ConvTransposeLayer
    | LinearLayer
    | MatmulLayer
    | AttentionLayer
    | PoolLayer
    | AddLayer
    | MulLayer
    | ConcatLayer
    | SplitLayer
    | NormLayer
    | ActivationLayer
    | SoftmaxLayer
    | EmbeddingLayer
    | ResizeLayer
    | ReshapeLayer
    | FlattenLayer
    | TransposeLayer
    | IdentityLayer
    | GenericLayer,
    Field(discriminator="op"),
]


class GraphFile(BaseModel):
    """A DNN task graph: layers in any order, edges given by each layer's ``inputs``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["isosched.graph/v1"] = Field(default="isosched.graph/v1", alias="schema")
    name: str = Field(min_length=1, max_length=256)
    dtype: Literal["int4", "int8", "fp8", "fp16", "bf16", "fp32"] = "int8"
    layers: list[LayerSpec] = Field(min_length=1, max_length=MAX_LAYERS)
    meta: dict[str, Any] = Field(default_factory=dict, description="Provenance, free-form.")

    @model_validator(mode="before")
    @classmethod
    def _cap_layers(cls, data: Any) -> Any:
        # Reject huge graphs before pydantic validates every layer.
        if isinstance(data, dict):
            layers = data.get("layers")
            if isinstance(layers, list) and len(layers) > MAX_LAYERS:
                raise ValueError(f"graph has {len(layers):,} layers; the limit is {MAX_LAYERS:,}")
        return data
