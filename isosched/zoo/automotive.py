"""Automotive perception and assistant models of the zoo (MLPerf Automotive-like workloads).

SSD300, DeepLabv3+, a BEVFormer-tiny-class 3-D detector, and a LLaMA-2-7B decode step. Each is
written from the architecture description of its paper; where a paper leaves a size open (input
resolution, context length) the docstring states the value used. Post-processing (box decoding,
non-maximum suppression, arg-max) is not part of the graphs.
"""

from __future__ import annotations

from isosched.zoo.builder import GraphBuilder
from isosched.zoo.cnn import conv_bn_act

__all__ = [
    "build_bevformer_tiny",
    "build_deeplabv3plus",
    "build_llama2_7b_decode",
    "build_ssd300",
]


def _conv_relu(
    b: GraphBuilder,
    x: str,
    name: str,
    out: int,
    k: int,
    *,
    stride: int = 1,
    padding: int | None = None,
    dilation: int = 1,
) -> str:
    """VGG-style convolution with bias (no batch norm) and ReLU."""
    y = b.add(
        "conv",
        [x],
        id=name,
        out_channels=out,
        kernel=k,
        stride=stride,
        padding=k // 2 * dilation if padding is None else padding,
        dilation=dilation,
        bias=True,
    )
    return b.add("activation", [y], id=f"{name}.relu", kind="relu")


def build_ssd300(classes: int = 21) -> GraphBuilder:
    """SSD300 with a VGG-16 base: six source maps, 3x3 location and confidence heads.

    VGG-16 conv1_1 .. conv5_3 (pool5 3x3 stride 1), fc6 as a 3x3 convolution of 1024 channels
    with dilation 6, fc7 as a 1x1 convolution, then the extra layers conv8_2 (1x1 256, 3x3 512
    stride 2), conv9_2 (1x1 128, 3x3 256 stride 2), conv10_2 and conv11_2 (1x1 128, 3x3 256
    valid). Sources conv4_3 (38x38), fc7 (19x19), conv8_2 .. conv11_2 (10, 5, 3, 1) with 4, 6,
    6, 6, 4, 4 default boxes; each source has a 3x3 convolution of 4 x boxes (location) and
    classes x boxes (confidence) channels. 8 732 boxes in all.

    References
    ----------
    W. Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016, Fig. 2 and Section 3.1
    (SSD300, PASCAL VOC: 21 classes with background). MLPerf Automotive v0.5 (arXiv:2510.27065)
    uses an SSD for its 2-D detection task; its backbone and resolution differ.
    """
    b = GraphBuilder("ssd300")
    x = b.add("input", id="input", shape=[3, 300, 300])
    sources: list[tuple[str, int]] = []
    for stage, (width, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(convs):
            x = _conv_relu(b, x, f"conv{stage}_{i + 1}", width, 3)
        if stage == 4:
            sources.append((x, 4))
        if stage < 5:  # ceil mode on 75x75 -> 38x38: one row and column of padding
            pad = 1 if stage == 3 else 0
            x = b.add("pool", [x], id=f"pool{stage}", kind="max", kernel=2, stride=2, padding=pad)
    x = b.add("pool", [x], id="pool5", kind="max", kernel=3, stride=1, padding=1)
    x = _conv_relu(b, x, "fc6", 1024, 3, dilation=6)
    x = _conv_relu(b, x, "fc7", 1024, 1)
    sources.append((x, 6))
    for name, mid, out, stride, pad, boxes in [
        ("conv8", 256, 512, 2, 1, 6),
        ("conv9", 128, 256, 2, 1, 6),
        ("conv10", 128, 256, 1, 0, 4),
        ("conv11", 128, 256, 1, 0, 4),
    ]:
        x = _conv_relu(b, x, f"{name}_1", mid, 1)
        x = _conv_relu(b, x, f"{name}_2", out, 3, stride=stride, padding=pad)
        sources.append((x, boxes))
    for i, (src, boxes) in enumerate(sources):
        for head, per in (("loc", 4), ("conf", classes)):
            b.add(
                "conv",
                [src],
                id=f"head{i}.{head}",
                out_channels=per * boxes,
                kernel=3,
                padding=1,
                bias=True,
            )
    return b


def _resnet50_trunk(b: GraphBuilder, x: str, *, output_stride: int = 32) -> tuple[str, str]:
    """ResNet-50 conv1 .. layer4 (v1.5); returns (layer1 output, layer4 output).

    With ``output_stride`` 16, layer4 keeps stride 1 and dilates its 3x3 convolutions by 2.
    """
    x = conv_bn_act(b, x, "backbone.conv1", 64, 7, stride=2, padding=3)
    x = b.add("pool", [x], id="backbone.maxpool", kind="max", kernel=3, stride=2, padding=1)
    in_ch = 64
    low = x
    for stage, (width, blocks, stride) in enumerate(
        [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1
    ):
        dil = 1
        if stage == 4 and output_stride == 16:
            stride, dil = 1, 2
        for i in range(blocks):
            s = stride if i == 0 else 1
            p = f"backbone.layer{stage}.{i}"
            y = conv_bn_act(b, x, f"{p}.conv1", width, 1)
            y = b.add(
                "conv",
                [y],
                id=f"{p}.conv2",
                out_channels=width,
                kernel=3,
                stride=s,
                padding=dil,
                dilation=dil,
            )
            y = b.add("norm", [y], id=f"{p}.conv2.bn", kind="batch")
            y = b.add("activation", [y], id=f"{p}.conv2.act", kind="relu")
            y = conv_bn_act(b, y, f"{p}.conv3", width * 4, 1, act=None)
            short = x
            if i == 0 and (s != 1 or in_ch != width * 4):
                short = conv_bn_act(
                    b, x, f"{p}.downsample", width * 4, 1, stride=s, padding=0, act=None
                )
            y = b.add("add", [y, short], id=f"{p}.add")
            x = b.add("activation", [y], id=f"{p}.relu", kind="relu")
            in_ch = width * 4
        if stage == 1:
            low = x
    return low, x


def build_deeplabv3plus(height: int = 512, width: int = 1024, classes: int = 19) -> GraphBuilder:
    """DeepLabv3+ with a ResNet-50 encoder at output stride 16, half Cityscapes resolution.

    Encoder: ResNet-50 with layer4 dilated (output stride 16); ASPP of a 1x1 convolution, three
    3x3 convolutions with atrous rates 6, 12 and 18, and image-level pooling, each 256
    channels, concatenated and projected by a 1x1 convolution. Decoder: the encoder output
    upsampled 4x, concatenated with layer1's features reduced to 48 channels by a 1x1
    convolution, two 3x3 convolutions of 256 channels, a 1x1 classifier, upsampled 4x.

    References
    ----------
    L.-C. Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
    Segmentation", ECCV 2018, Fig. 2 and Section 3 (ResNet-50 instead of the paper's Xception
    or ResNet-101, as in MLPerf Inference's PointPainting; Cityscapes frames downsampled 2x to
    512x1024, 19 classes: at 1024x2048 one activation tensor alone is 33 MB).
    """
    b = GraphBuilder("deeplabv3plus")
    x = b.add("input", id="input", shape=[3, height, width])
    low, x = _resnet50_trunk(b, x, output_stride=16)
    branches = [conv_bn_act(b, x, "aspp.b0", 256, 1)]
    for i, rate in enumerate((6, 12, 18), start=1):
        y = b.add(
            "conv",
            [x],
            id=f"aspp.b{i}",
            out_channels=256,
            kernel=3,
            padding=rate,
            dilation=rate,
        )
        y = b.add("norm", [y], id=f"aspp.b{i}.bn", kind="batch")
        branches.append(b.add("activation", [y], id=f"aspp.b{i}.act", kind="relu"))
    pooled = b.add("pool", [x], id="aspp.pool", kind="avg", **{"global": True})
    pooled = conv_bn_act(b, pooled, "aspp.pool.conv", 256, 1)
    h16, w16 = height // 16, width // 16
    branches.append(b.add("resize", [pooled], id="aspp.pool.up", size=[h16, w16]))
    x = b.add("concat", branches, id="aspp.concat", axis=0)
    x = conv_bn_act(b, x, "aspp.project", 256, 1)
    x = b.add("resize", [x], id="decoder.up4", scale=4, mode="bilinear")
    skip = conv_bn_act(b, low, "decoder.low", 48, 1)
    x = b.add("concat", [x, skip], id="decoder.concat", axis=0)
    x = conv_bn_act(b, x, "decoder.conv1", 256, 3)
    x = conv_bn_act(b, x, "decoder.conv2", 256, 3)
    x = b.add("conv", [x], id="classifier", out_channels=classes, kernel=1, bias=True)
    b.add("resize", [x], id="upsample", scale=4, mode="bilinear")
    return b


def _deformable(
    b: GraphBuilder, q: str, value: str, p: str, *, queries: int, dim: int, samples: int
) -> str:
    """Deformable attention over ``value`` for ``queries`` queries of width ``dim``.

    Offsets and weights come from the queries; ``samples`` bilinear samples per query and head
    are gathered from the projected values and summed; an output projection follows.
    """
    heads = 8
    off = b.add("linear", [q], id=f"{p}.offsets", out_features=heads * samples * 2, bias=True)
    w = b.add("linear", [q], id=f"{p}.weights", out_features=heads * samples, bias=True)
    v = b.add("linear", [value], id=f"{p}.value", out_features=dim, bias=True)
    # Bilinear sampling: 4 taps per sample and channel, weighted sum over the samples.
    g = b.add(
        "generic",
        [off, w, v],
        id=f"{p}.sample",
        kind="deformable_sampling",
        shape=[queries, dim],
        vector_ops=5 * queries * samples * dim,
    )
    return b.add("linear", [g], id=f"{p}.out", out_features=dim, bias=True)


def build_bevformer_tiny(
    cameras: int = 6, height: int = 480, width: int = 800, bev: int = 50, queries: int = 900
) -> GraphBuilder:
    """A BEVFormer-tiny-class camera 3-D detector.

    Image backbone: ResNet-50 over the six camera frames, written as one image of the frames
    side by side (the convolutions' work equals the six frames' up to the borders); a neck of
    a 1x1 and a 3x3 convolution to 256 channels at stride 32. BEV encoder: 3 layers over
    ``bev`` x ``bev`` BEV queries of width 256, each temporal self-attention (deformable, 4
    samples per head over the BEV and the previous BEV), spatial cross-attention (deformable,
    4 reference heights x 2 samples per camera hit, 2 cameras per query on average), and a
    feed-forward network 256 -> 512 -> 256. Decoder: 6 layers over 900 object queries of
    self-attention (8 heads), deformable cross-attention to the BEV (4 samples), and the same
    feed-forward network; classification (10 classes) and box regression (10 values) heads.

    References
    ----------
    Z. Li et al., "BEVFormer: Learning Bird's-Eye-View Representation from Multi-Camera Images
    via Spatiotemporal Transformers", ECCV 2022, Sections 3-4; the "tiny" configuration
    (ResNet-50, 50x50 BEV, 3 encoder layers, one feature level) is the one MLPerf Automotive
    v0.5 (arXiv:2510.27065) uses for 3-D detection. Camera frames 480x800 (nuScenes frames
    resized to the tiny configuration's scale, padded to a multiple of 32).
    """
    b = GraphBuilder("bevformer_tiny")
    x = b.add("input", id="images", shape=[3, height, width * cameras])
    _, x = _resnet50_trunk(b, x)
    x = conv_bn_act(b, x, "neck.reduce", 256, 1, act=None)
    x = conv_bn_act(b, x, "neck.fpn", 256, 3, act=None)
    tokens = (height // 32) * (width * cameras // 32)
    feats = b.add("flatten", [x], id="neck.flatten", start=1)
    feats = b.add("transpose", [feats], id="neck.tokens", perm=[1, 0])
    dim, n_bev = 256, bev * bev
    q = b.add("input", id="bev_queries", shape=[n_bev, dim])
    prev = b.add("input", id="prev_bev", shape=[n_bev, dim])
    for i in range(3):
        p = f"encoder.{i}"
        both = b.add("concat", [q, prev], id=f"{p}.tsa.stack", axis=0)
        h = _deformable(b, q, both, f"{p}.tsa", queries=n_bev, dim=dim, samples=4)
        q = b.add("norm", [b.add("add", [q, h], id=f"{p}.tsa.add")], id=f"{p}.norm1", kind="layer")
        h = _deformable(b, q, feats, f"{p}.sca", queries=n_bev, dim=dim, samples=2 * 4 * 2)
        q = b.add("norm", [b.add("add", [q, h], id=f"{p}.sca.add")], id=f"{p}.norm2", kind="layer")
        h = b.add("linear", [q], id=f"{p}.ffn.fc1", out_features=512, bias=True)
        h = b.add("activation", [h], id=f"{p}.ffn.act", kind="relu")
        h = b.add("linear", [h], id=f"{p}.ffn.fc2", out_features=dim, bias=True)
        q = b.add("norm", [b.add("add", [q, h], id=f"{p}.ffn.add")], id=f"{p}.norm3", kind="layer")
    bev_map = q
    o = b.add("input", id="object_queries", shape=[queries, dim])
    for i in range(6):
        p = f"decoder.{i}"
        qkv = b.add("linear", [o], id=f"{p}.sa.qkv", out_features=3 * dim, bias=True)
        h = b.add("attention", [qkv], id=f"{p}.sa.core", heads=8)
        h = b.add("linear", [h], id=f"{p}.sa.proj", out_features=dim, bias=True)
        o = b.add("norm", [b.add("add", [o, h], id=f"{p}.sa.add")], id=f"{p}.norm1", kind="layer")
        h = _deformable(b, o, bev_map, f"{p}.ca", queries=queries, dim=dim, samples=4)
        o = b.add("norm", [b.add("add", [o, h], id=f"{p}.ca.add")], id=f"{p}.norm2", kind="layer")
        h = b.add("linear", [o], id=f"{p}.ffn.fc1", out_features=512, bias=True)
        h = b.add("activation", [h], id=f"{p}.ffn.act", kind="relu")
        h = b.add("linear", [h], id=f"{p}.ffn.fc2", out_features=dim, bias=True)
        o = b.add("norm", [b.add("add", [o, h], id=f"{p}.ffn.add")], id=f"{p}.norm3", kind="layer")
    b.add("linear", [o], id="head.cls", out_features=10, bias=True)
    b.add("linear", [o], id="head.reg", out_features=10, bias=True)
    del tokens
    return b


def build_llama2_7b_decode(context: int = 512) -> GraphBuilder:
    """One LLaMA-2-7B decode step: one new token attending to ``context`` cached tokens.

    The same 32 blocks as :func:`~isosched.zoo.transformer.build_llama2_7b` (d = 4096, 32 heads,
    SwiGLU 11008, RMSNorm, RoPE, untied 32000-token LM head) on one token; each block reads its
    key and value caches (``context`` x 4096 each, graph inputs) and attends to them. All the
    weights are read once per step: a decode step is bound by weight traffic.

    References
    ----------
    H. Touvron et al., "Llama 2: Open Foundation and Fine-Tuned Chat Models",
    arXiv:2307.09288, 2023, Table 1 (7B). Context of 512 tokens: our choice for an in-vehicle
    assistant's prompt plus answer so far.
    """
    dim, depth, heads, ffn, vocab = 4096, 32, 32, 11008, 32000
    b = GraphBuilder("llama2_7b_decode")
    ids = b.add("input", id="input_ids", shape=[1])
    x = b.add("embedding", [ids], id="embed_tokens", num_embeddings=vocab, dim=dim)
    rope = {"kind": "rope", "shape": [1, dim], "vector_ops": 3 * dim}
    for i in range(depth):
        p = f"layers.{i}"
        h = b.add("norm", [x], id=f"{p}.input_norm", kind="rms")
        q = b.add("linear", [h], id=f"{p}.attn.q", out_features=dim)
        b.add("linear", [h], id=f"{p}.attn.k", out_features=dim)  # appended to the cache
        b.add("linear", [h], id=f"{p}.attn.v", out_features=dim)
        q = b.add("generic", [q], id=f"{p}.attn.q_rope", **rope)
        k = b.add("input", id=f"{p}.k_cache", shape=[context, dim])
        v = b.add("input", id=f"{p}.v_cache", shape=[context, dim])
        h = b.add("attention", [q, k, v], id=f"{p}.attn.core", heads=heads)
        h = b.add("linear", [h], id=f"{p}.attn.o", out_features=dim)
        x = b.add("add", [x, h], id=f"{p}.attn.add")
        h = b.add("norm", [x], id=f"{p}.post_attn_norm", kind="rms")
        g = b.add("linear", [h], id=f"{p}.mlp.gate", out_features=ffn)
        g = b.add("activation", [g], id=f"{p}.mlp.silu", kind="silu")
        u = b.add("linear", [h], id=f"{p}.mlp.up", out_features=ffn)
        h = b.add("mul", [g, u], id=f"{p}.mlp.mul")
        h = b.add("linear", [h], id=f"{p}.mlp.down", out_features=dim)
        x = b.add("add", [x, h], id=f"{p}.mlp.add")
    x = b.add("norm", [x], id="norm", kind="rms")
    b.add("linear", [x], id="lm_head", out_features=vocab)
    return b
