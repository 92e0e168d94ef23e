"""The model zoo: named, validated graphs of published DNNs (sixteen; ``zoo_names()``).

Each :class:`ZooEntry` builds its ``isosched.graph/v1`` document from our own builder (no
framework at run time); :func:`load_zoo_model` validates and caches it, :func:`write_zoo`
writes every model and a ``MANIFEST.json`` summary.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isosched.errors import UnknownModelError
from isosched.graph.model import Graph, parse_graph
from isosched.io.graph_json import write_graph
from isosched.zoo.automotive import (
    build_bevformer_tiny,
    build_deeplabv3plus,
    build_llama2_7b_decode,
    build_ssd300,
)
from isosched.zoo.builder import GraphBuilder
from isosched.zoo.cnn import build_googlenet, build_mobilenetv2, build_resnet50, build_unet
from isosched.zoo.detection import build_pointpillars, build_yolov3
from isosched.zoo.transformer import (
    build_bert_base,
    build_gpt2,
    build_gpt2_xl,
    build_llama2_7b,
    build_segformer_b0,
    build_vit_b16,
)

__all__ = ["ZOO", "ZooEntry", "load_zoo_model", "write_zoo", "zoo_names"]

MANIFEST_NAME = "MANIFEST.json"


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo.

    Attributes
    ----------
    name : str
        Zoo name (also the graph name and the file stem).
    build : callable
        Returns the model's ``isosched.graph/v1`` document (a fresh dict on every call).
    source : str
        Citation of the paper the architecture is taken from.
    input_shape : tuple of int
        Shape of the main input, batch (always 1) included, e.g. ``(1, 3, 224, 224)`` or
        ``(1, 128)`` token ids.
    description : str
        One line on the variant and its modelling choices.
    """

    name: str
    build: Callable[[], dict[str, Any]]
    source: str
    input_shape: tuple[int, ...]
    description: str


def _entry(
    name: str,
    builder: Callable[[], GraphBuilder],
    source: str,
    input_shape: tuple[int, ...],
    description: str,
) -> ZooEntry:
    def build() -> dict[str, Any]:
        b = builder()
        if b.name != name:
            raise ValueError(f"builder of {name!r} produced a graph named {b.name!r}")
        b.meta.update(
            source=source,
            input_shape=list(input_shape),
            description=description,
            generator="isosched.zoo",
        )
        return b.to_dict()

    return ZooEntry(name, build, source, input_shape, description)


_ENTRIES = [
    _entry(
        "resnet50",
        build_resnet50,
        "He et al., Deep Residual Learning for Image Recognition, CVPR 2016",
        (1, 3, 224, 224),
        "ResNet-50 v1.5 (stride on the 3x3 conv), ImageNet 1000 classes",
    ),
    _entry(
        "mobilenetv2",
        build_mobilenetv2,
        "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018",
        (1, 3, 224, 224),
        "MobileNetV2 width 1.0, ReLU6, ImageNet 1000 classes",
    ),
    _entry(
        "googlenet",
        build_googlenet,
        "Szegedy et al., Going Deeper with Convolutions, CVPR 2015",
        (1, 3, 224, 224),
        "Inception v1 per Table 1 (5x5 branches, LRN, no BN), no auxiliary classifiers",
    ),
    _entry(
        "yolov3",
        build_yolov3,
        "Redmon and Farhadi, YOLOv3: An Incremental Improvement, arXiv:1804.02767, 2018",
        (1, 3, 416, 416),
        "Darknet-53 + 3-scale head, 80 COCO classes, 255-channel outputs, no box decoding",
    ),
    _entry(
        "unet",
        build_unet,
        "Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image "
        "Segmentation, MICCAI 2015",
        (1, 3, 256, 512),
        "U-Net 64..1024 channels, same-padded 3x3 conv + BN + ReLU, 2 output classes",
    ),
    _entry(
        "pointpillars",
        build_pointpillars,
        "Lang et al., PointPillars: Fast Encoders for Object Detection from Point Clouds, "
        "CVPR 2019",
        (1, 12000, 32, 9),
        "KITTI car: 12000 pillars x 32 points, 64x496x432 canvas, SSD head (2 anchors)",
    ),
    _entry(
        "segformer_b0",
        build_segformer_b0,
        "Xie et al., SegFormer: Simple and Efficient Design for Semantic Segmentation with "
        "Transformers, NeurIPS 2021",
        (1, 3, 512, 512),
        "MiT-B0 encoder + all-MLP decoder (256 ch), ADE20K 150 classes",
    ),
    _entry(
        "vit_b16",
        build_vit_b16,
        "Dosovitskiy et al., An Image is Worth 16x16 Words, ICLR 2021",
        (1, 3, 224, 224),
        "ViT-Base/16, 197 tokens, ImageNet 1000-class head",
    ),
    _entry(
        "bert_base",
        build_bert_base,
        "Devlin et al., BERT: Pre-training of Deep Bidirectional Transformers for Language "
        "Understanding, NAACL 2019",
        (1, 128),
        "BERT-base encoder + pooler, 128 tokens, no pre-training heads",
    ),
    _entry(
        "gpt2",
        build_gpt2,
        "Radford et al., Language Models are Unsupervised Multitask Learners, OpenAI 2019",
        (1, 128),
        "GPT-2 124M, prefill of 128 tokens, LM head tied to the token embedding",
    ),
    _entry(
        "gpt2_xl",
        build_gpt2_xl,
        "Radford et al., Language Models are Unsupervised Multitask Learners, OpenAI 2019",
        (1, 128),
        "GPT-2 XL 1.5B, prefill of 128 tokens, LM head tied to the token embedding",
    ),
    _entry(
        "llama2_7b",
        build_llama2_7b,
        "Touvron et al., Llama 2: Open Foundation and Fine-Tuned Chat Models, "
        "arXiv:2307.09288, 2023",
        (1, 128),
        "LLaMA-2-7B prefill of 128 tokens, SwiGLU, RMSNorm, RoPE, untied LM head",
    ),
    _entry(
        "llama2_7b_decode",
        build_llama2_7b_decode,
        "Touvron et al., Llama 2: Open Foundation and Fine-Tuned Chat Models, "
        "arXiv:2307.09288, 2023",
        (1, 1),
        "LLaMA-2-7B decode step: one token attending to a 512-token key/value cache",
    ),
    _entry(
        "ssd300",
        build_ssd300,
        "Liu et al., SSD: Single Shot MultiBox Detector, ECCV 2016",
        (1, 3, 300, 300),
        "SSD300, VGG-16 base, 6 source maps, 8732 default boxes, 21 VOC classes, no NMS",
    ),
    _entry(
        "deeplabv3plus",
        build_deeplabv3plus,
        "Chen et al., Encoder-Decoder with Atrous Separable Convolution for Semantic Image "
        "Segmentation, ECCV 2018",
        (1, 3, 512, 1024),
        "DeepLabv3+, ResNet-50 encoder at output stride 16, ASPP 6/12/18, 512x1024, 19 classes",
    ),
    _entry(
        "bevformer_tiny",
        build_bevformer_tiny,
        "Li et al., BEVFormer: Learning Bird's-Eye-View Representation from Multi-Camera "
        "Images via Spatiotemporal Transformers, ECCV 2022",
        (1, 3, 480, 4800),
        "BEVFormer-tiny-class: ResNet-50 on 6 cameras 480x800, 50x50 BEV, 3 encoder and 6 "
        "decoder layers, 900 queries",
    ),
]

#: The zoo, by name, in a fixed order (CNNs, detectors, transformers).
ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def zoo_names() -> list[str]:
    """Names of the zoo models, in zoo order."""
    return list(ZOO)


@functools.lru_cache(maxsize=64)
def load_zoo_model(name: str) -> Graph:
    """Build and validate one zoo model (cached; the returned graph is immutable).

    Raises
    ------
    UnknownModelError
        If ``name`` is not a zoo model; the message lists the known names.
    """
    entry = ZOO.get(name)
    if entry is None:
        raise UnknownModelError(f"unknown zoo model {name!r}; known models: {', '.join(ZOO)}")
    return parse_graph(entry.build())


def manifest_entry(name: str, graph: Graph) -> dict[str, Any]:
    """The ``MANIFEST.json`` record of one zoo model."""
    entry = ZOO[name]
    return {
        "name": name,
        "source": entry.source,
        "input_shape": list(entry.input_shape),
        "layers": len(graph),
        "edges": len(graph.edges),
        "macs": graph.macs,
        "params": graph.params,
        "weight_bytes": graph.weight_bytes,
        "file": f"{name}.json",
    }


def write_zoo(directory: Path) -> dict[str, dict[str, Any]]:
    """Write ``<name>.json`` for every zoo model and ``MANIFEST.json`` into ``directory``.

    ``MANIFEST.json`` holds a JSON list of one record per model (name, source, input_shape,
    layers, edges, macs, params, weight_bytes, file), in zoo order, one record per line.

    Returns
    -------
    dict
        The manifest records keyed by model name, in zoo order.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, Any]] = {}
    for name in ZOO:
        graph = load_zoo_model(name)
        write_graph(graph, directory / f"{name}.json")
        manifest[name] = manifest_entry(name, graph)
    records = ",\n".join("  " + json.dumps(rec) for rec in manifest.values())
    text = f"[\n{records}\n]\n"
    (directory / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return manifest
