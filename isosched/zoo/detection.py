"""Object detectors of the model zoo: YOLOv3 (image) and PointPillars (LiDAR).

Post-processing (box decoding, non-maximum suppression) is not part of the graphs: they end at
the raw head convolutions.
"""

from __future__ import annotations

from isosched.zoo.builder import GraphBuilder
from isosched.zoo.cnn import conv_bn_act

__all__ = ["build_pointpillars", "build_yolov3"]


def _dbl(b: GraphBuilder, x: str, name: str, out: int, k: int, stride: int = 1) -> str:
    """Darknet convolutional unit: bias-free conv, batch norm, leaky ReLU (slope 0.1)."""
    return conv_bn_act(b, x, name, out, k, stride=stride, act="leaky_relu")


def build_yolov3(size: int = 416, classes: int = 80) -> GraphBuilder:
    """YOLOv3 at 416x416: Darknet-53 backbone and the three-scale FPN-style head.

    Darknet-53 has 52 convolutions in five stages of [1, 2, 8, 8, 4] residual units; the head
    predicts 3 anchors x (5 + classes) = 255 channels at strides 32, 16 and 8 (13x13, 26x26,
    52x52), feeding the coarser scale's features to the finer one through a 1x1 convolution,
    2x nearest upsampling and a concatenation with the backbone feature of that scale.

    Parameters
    ----------
    size : int
        Square input size, a multiple of 32.
    classes : int
        Number of object classes (80 for COCO).

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    J. Redmon and A. Farhadi, "YOLOv3: An Incremental Improvement", arXiv:1804.02767, 2018
    (Table 1 and Section 2.3; layer order as in the authors' ``yolov3.cfg``).
    """
    if size % 32:
        raise ValueError(f"YOLOv3 input size {size} must be a multiple of 32")
    b = GraphBuilder("yolov3")
    x = b.add("input", id="input", shape=[3, size, size])
    x = _dbl(b, x, "backbone.conv0", 32, 3)
    features: list[str] = []
    width = 32
    for stage, repeats in enumerate([1, 2, 8, 8, 4], start=1):
        width *= 2
        x = _dbl(b, x, f"backbone.stage{stage}.down", width, 3, stride=2)
        for i in range(repeats):
            p = f"backbone.stage{stage}.{i}"
            y = _dbl(b, x, f"{p}.conv1", width // 2, 1)
            y = _dbl(b, y, f"{p}.conv2", width, 3)
            x = b.add("add", [y, x], id=f"{p}.add")
        features.append(x)
    route: str | None = None
    anchors_out = 3 * (5 + classes)
    # Head scales from coarse (stride 32) to fine (stride 8).
    for scale, (feat, width) in enumerate(
        [(features[4], 512), (features[3], 256), (features[2], 128)], start=1
    ):
        p = f"head{scale}"
        x = feat
        if route is not None:
            r = _dbl(b, route, f"{p}.route_conv", width, 1)
            up = b.add("resize", [r], id=f"{p}.upsample", scale=2, mode="nearest")
            x = b.add("concat", [up, feat], id=f"{p}.concat", axis=0)
        for i in range(5):
            k = 1 if i % 2 == 0 else 3
            x = _dbl(b, x, f"{p}.conv{i + 1}", width if k == 1 else 2 * width, k)
        route = x
        y = _dbl(b, x, f"{p}.conv6", 2 * width, 3)
        b.add("conv", [y], id=f"{p}.out", out_channels=anchors_out, kernel=1, bias=True)
    return b


def build_pointpillars() -> GraphBuilder:
    """PointPillars, KITTI car configuration (0.16 m pillars, 496x432 pseudo-image).

    Pillar feature net: a shared linear layer 9 -> 64 over 12000 pillars x 32 points (with
    batch norm and ReLU), max over the points of each pillar, and a scatter of the pillar
    features to the 64x496x432 canvas (a ``generic`` layer of kind ``"scatter"`` that also
    reads the pillar coordinates). Backbone: three blocks of 64/128/256 channels at strides
    2/4/8, each a strided 3x3 convolution followed by 3/5/5 more 3x3 convolutions (L = 4, 6, 6
    in the paper); three transposed convolutions (strides 1/2/4) bring each block to 128
    channels at stride 2, concatenated to 384 channels; the SSD head is three 1x1
    convolutions: class scores (2 anchors x 1 class), boxes (2 x 7) and direction (2 x 2).

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    A. H. Lang, S. Vora, H. Caesar, L. Zhou, J. Yang and O. Beijbom, "PointPillars: Fast
    Encoders for Object Detection from Point Clouds", CVPR 2019, Sections 2 and 3.
    """
    pillars, points, canvas_h, canvas_w = 12000, 32, 496, 432
    b = GraphBuilder("pointpillars")
    x = b.add("input", id="pillars", shape=[pillars, points, 9])
    coords = b.add("input", id="coords", shape=[pillars, 3])
    x = b.add("linear", [x], id="pfn.linear", out_features=64)
    x = b.add("norm", [x], id="pfn.bn", kind="batch", axis=-1)
    x = b.add("activation", [x], id="pfn.relu", kind="relu")
    # [P, N, 64] read as [C=P, H=N, W=64]: a (N x 1) max pool reduces over the points.
    x = b.add("pool", [x], id="pfn.max", kind="max", kernel=[points, 1], stride=[points, 1])
    x = b.add("reshape", [x], id="pfn.squeeze", shape=[pillars, 64])
    x = b.add(
        "generic",
        [x, coords],
        id="scatter",
        kind="scatter",
        shape=[64, canvas_h, canvas_w],
    )
    blocks: list[str] = []
    for i, (width, convs) in enumerate([(64, 3), (128, 5), (256, 5)], start=1):
        x = conv_bn_act(b, x, f"backbone.block{i}.0", width, 3, stride=2)
        for j in range(1, convs + 1):
            x = conv_bn_act(b, x, f"backbone.block{i}.{j}", width, 3)
        blocks.append(x)
    ups: list[str] = []
    for i, (feat, stride) in enumerate(zip(blocks, [1, 2, 4], strict=True), start=1):
        y = b.add(
            "conv_transpose",
            [feat],
            id=f"neck.deconv{i}",
            out_channels=128,
            kernel=stride,
            stride=stride,
        )
        y = b.add("norm", [y], id=f"neck.deconv{i}.bn", kind="batch")
        ups.append(b.add("activation", [y], id=f"neck.deconv{i}.act", kind="relu"))
    x = b.add("concat", ups, id="neck.concat", axis=0)
    for head, out in [("cls", 2), ("box", 2 * 7), ("dir", 2 * 2)]:
        b.add("conv", [x], id=f"head.{head}", out_channels=out, kernel=1, bias=True)
    return b
