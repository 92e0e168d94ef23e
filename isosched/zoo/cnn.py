"""Convolutional classification and segmentation networks of the model zoo.

Every builder writes the inference graph (batch 1, no training-only branches) from the
architecture tables of the cited paper. Shapes exclude the batch dimension.
"""

from __future__ import annotations

import math

from isosched.zoo.builder import GraphBuilder

__all__ = [
    "build_googlenet",
    "build_mobilenetv2",
    "build_resnet50",
    "build_unet",
    "conv_bn_act",
]


def conv_bn_act(
    b: GraphBuilder,
    x: str,
    name: str,
    out_channels: int,
    kernel: int | tuple[int, int],
    *,
    stride: int = 1,
    padding: int | None = None,
    groups: int = 1,
    act: str | None = "relu",
) -> str:
    """Add ``conv -> norm(batch) [-> activation]`` and return the last layer id.

    Parameters
    ----------
    b : GraphBuilder
        Builder to extend.
    x : str
        Input layer id.
    name : str
        Prefix of the new layer ids (``<name>``, ``<name>.bn``, ``<name>.act``).
    out_channels, kernel, stride, groups : int
        Convolution parameters; the convolution has no bias (batch norm follows).
    padding : int, optional
        Defaults to ``kernel // 2`` ("same" padding for odd square kernels).
    act : str or None
        Activation kind, or ``None`` for no activation.

    Returns
    -------
    str
        Id of the last layer added.
    """
    k = kernel if isinstance(kernel, int) else kernel[0]
    pad = k // 2 if padding is None else padding
    y = b.add(
        "conv",
        [x],
        id=name,
        out_channels=out_channels,
        kernel=kernel,
        stride=stride,
        padding=pad,
        groups=groups,
    )
    y = b.add("norm", [y], id=f"{name}.bn", kind="batch")
    if act is not None:
        y = b.add("activation", [y], id=f"{name}.act", kind=act)
    return y


def _classifier(b: GraphBuilder, x: str, classes: int = 1000, dropout: bool = False) -> str:
    """Global average pool, flatten, (dropout,) fully connected layer with bias."""
    y = b.add("pool", [x], id="avgpool", kind="avg", **{"global": True})
    y = b.add("flatten", [y], id="flatten")
    if dropout:
        y = b.add("identity", [y], id="dropout")
    return b.add("linear", [y], id="fc", out_features=classes, bias=True)


def build_resnet50() -> GraphBuilder:
    """ResNet-50 (ImageNet, 224x224 input, 1000 classes).

    Bottleneck blocks [3, 4, 6, 3] with widths 64/128/256/512 (expansion 4); the stride of
    each downsampling block sits on its 3x3 convolution ("v1.5", as in most deployments) and
    the projection shortcut is a strided 1x1 convolution with batch norm.

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    K. He, X. Zhang, S. Ren and J. Sun, "Deep Residual Learning for Image Recognition",
    CVPR 2016, Table 1 (50-layer column).
    """
    b = GraphBuilder("resnet50")
    x = b.add("input", id="input", shape=[3, 224, 224])
    x = conv_bn_act(b, x, "conv1", 64, 7, stride=2, padding=3)
    x = b.add("pool", [x], id="maxpool", kind="max", kernel=3, stride=2, padding=1)
    in_ch = 64
    for stage, (width, blocks, stride) in enumerate(
        [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1
    ):
        for i in range(blocks):
            s = stride if i == 0 else 1
            p = f"layer{stage}.{i}"
            y = conv_bn_act(b, x, f"{p}.conv1", width, 1)
            y = conv_bn_act(b, y, f"{p}.conv2", width, 3, stride=s)
            y = conv_bn_act(b, y, f"{p}.conv3", width * 4, 1, act=None)
            short = x
            if i == 0 and (s != 1 or in_ch != width * 4):
                short = conv_bn_act(
                    b, x, f"{p}.downsample", width * 4, 1, stride=s, padding=0, act=None
                )
            y = b.add("add", [y, short], id=f"{p}.add")
            x = b.add("activation", [y], id=f"{p}.relu", kind="relu")
            in_ch = width * 4
    _classifier(b, x)
    return b


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` (MobileNet convention)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def build_mobilenetv2() -> GraphBuilder:
    """MobileNetV2 (width 1.0, 224x224 input, 1000 classes).

    Inverted residual bottlenecks with expansion t, output channels c, repeats n and first
    stride s as in Table 2 of the paper; ReLU6 after the expansion and depthwise convolutions,
    a linear (activation-free) projection, and a residual add when shapes match.

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    M. Sandler, A. Howard, M. Zhu, A. Zhmoginov and L.-C. Chen, "MobileNetV2: Inverted
    Residuals and Linear Bottlenecks", CVPR 2018, Table 2.
    """
    b = GraphBuilder("mobilenetv2")
    x = b.add("input", id="input", shape=[3, 224, 224])
    x = conv_bn_act(b, x, "features.0", 32, 3, stride=2, act="relu6")
    in_ch = 32
    settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    idx = 1
    for t, c, n, s in settings:
        out_ch = _make_divisible(c)
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{idx}"
            hidden = in_ch * t
            y = x
            if t != 1:
                y = conv_bn_act(b, y, f"{p}.expand", hidden, 1, act="relu6")
            y = conv_bn_act(b, y, f"{p}.dw", hidden, 3, stride=stride, groups=hidden, act="relu6")
            y = conv_bn_act(b, y, f"{p}.project", out_ch, 1, act=None)
            if stride == 1 and in_ch == out_ch:
                y = b.add("add", [y, x], id=f"{p}.add")
            x, in_ch = y, out_ch
            idx += 1
    x = conv_bn_act(b, x, f"features.{idx}", 1280, 1, act="relu6")
    _classifier(b, x, dropout=True)
    return b


def _inception(
    b: GraphBuilder,
    x: str,
    name: str,
    c1: int,
    c3r: int,
    c3: int,
    c5r: int,
    c5: int,
    pool_proj: int,
) -> str:
    """One Inception module: 1x1, 1x1->3x3, 1x1->5x5 and maxpool->1x1 branches, concat."""

    def conv_relu(src: str, lid: str, out: int, k: int) -> str:
        y = b.add("conv", [src], id=lid, out_channels=out, kernel=k, padding=k // 2, bias=True)
        return b.add("activation", [y], id=f"{lid}.relu", kind="relu")

    br1 = conv_relu(x, f"{name}.1x1", c1, 1)
    br2 = conv_relu(conv_relu(x, f"{name}.3x3_reduce", c3r, 1), f"{name}.3x3", c3, 3)
    br3 = conv_relu(conv_relu(x, f"{name}.5x5_reduce", c5r, 1), f"{name}.5x5", c5, 5)
    pool = b.add("pool", [x], id=f"{name}.pool", kind="max", kernel=3, stride=1, padding=1)
    br4 = conv_relu(pool, f"{name}.pool_proj", pool_proj, 1)
    return b.add("concat", [br1, br2, br3, br4], id=f"{name}.concat", axis=0)


def build_googlenet() -> GraphBuilder:
    """GoogLeNet / Inception v1 (224x224 input, 1000 classes), inference graph.

    Follows Table 1 of the paper: convolutions with bias and ReLU (no batch norm; the network
    predates it), 5x5 convolutions in the Inception branches, local response normalisation
    after the stem as ``generic`` layers of kind ``"lrn"``; the two auxiliary classifiers are
    training-only and left out.

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, Table 1.
    """
    b = GraphBuilder("googlenet")

    def conv_relu(src: str, lid: str, out: int, k: int, stride: int = 1) -> str:
        y = b.add(
            "conv",
            [src],
            id=lid,
            out_channels=out,
            kernel=k,
            stride=stride,
            padding=k // 2,
            bias=True,
        )
        return b.add("activation", [y], id=f"{lid}.relu", kind="relu")

    def lrn(src: str, lid: str) -> str:
        shape = list(b.shape(src))
        # Across-channel LRN over 5 neighbours: about 5 multiply-adds plus a power per element.
        return b.add(
            "generic", [src], id=lid, kind="lrn", shape=shape, vector_ops=7 * math.prod(shape)
        )

    x = b.add("input", id="input", shape=[3, 224, 224])
    x = conv_relu(x, "conv1", 64, 7, stride=2)
    x = b.add("pool", [x], id="pool1", kind="max", kernel=3, stride=2, padding=1)
    x = lrn(x, "pool1.lrn")
    x = conv_relu(x, "conv2.reduce", 64, 1)
    x = conv_relu(x, "conv2", 192, 3)
    x = lrn(x, "conv2.lrn")
    x = b.add("pool", [x], id="pool2", kind="max", kernel=3, stride=2, padding=1)
    x = _inception(b, x, "inception3a", 64, 96, 128, 16, 32, 32)
    x = _inception(b, x, "inception3b", 128, 128, 192, 32, 96, 64)
    x = b.add("pool", [x], id="pool3", kind="max", kernel=3, stride=2, padding=1)
    x = _inception(b, x, "inception4a", 192, 96, 208, 16, 48, 64)
    x = _inception(b, x, "inception4b", 160, 112, 224, 24, 64, 64)
    x = _inception(b, x, "inception4c", 128, 128, 256, 24, 64, 64)
    x = _inception(b, x, "inception4d", 112, 144, 288, 32, 64, 64)
    x = _inception(b, x, "inception4e", 256, 160, 320, 32, 128, 128)
    x = b.add("pool", [x], id="pool4", kind="max", kernel=3, stride=2, padding=1)
    x = _inception(b, x, "inception5a", 256, 160, 320, 32, 128, 128)
    x = _inception(b, x, "inception5b", 384, 192, 384, 48, 128, 128)
    _classifier(b, x, dropout=True)
    return b


def build_unet(height: int = 256, width: int = 512, classes: int = 2) -> GraphBuilder:
    """U-Net on a 3x256x512 image with the original 64..1024 channel plan.

    Four 2x2-maxpool contractions and four 2x2 up-convolutions (``conv_transpose``, stride 2,
    halving the channels) with skip concatenations; every 3x3 convolution is "same"-padded
    (so the output keeps the input size and the skips need no cropping) and followed by batch
    norm and ReLU; a final 1x1 convolution (with bias) maps to ``classes`` channels.

    Parameters
    ----------
    height, width : int
        Input size; both must be divisible by 16.
    classes : int
        Output channels (2 as in the paper).

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for Biomedical
    Image Segmentation", MICCAI 2015, Fig. 1.
    """
    if height % 16 or width % 16:
        raise ValueError(f"U-Net input {height}x{width} must be divisible by 16")
    b = GraphBuilder("unet")
    x = b.add("input", id="input", shape=[3, height, width])

    def double_conv(src: str, name: str, out: int) -> str:
        y = conv_bn_act(b, src, f"{name}.conv1", out, 3)
        return conv_bn_act(b, y, f"{name}.conv2", out, 3)

    widths = [64, 128, 256, 512, 1024]
    skips: list[str] = []
    x = double_conv(x, "enc1", widths[0])
    for level, w in enumerate(widths[1:], start=2):
        skips.append(x)
        x = b.add("pool", [x], id=f"pool{level - 1}", kind="max", kernel=2, stride=2)
        x = double_conv(x, f"enc{level}", w)
    for level, w in zip(range(4, 0, -1), reversed(widths[:-1]), strict=True):
        up = b.add(
            "conv_transpose",
            [x],
            id=f"up{level}",
            out_channels=w,
            kernel=2,
            stride=2,
            bias=True,
        )
        x = b.add("concat", [skips[level - 1], up], id=f"up{level}.concat", axis=0)
        x = double_conv(x, f"dec{level}", w)
    b.add("conv", [x], id="head", out_channels=classes, kernel=1, bias=True)
    return b
