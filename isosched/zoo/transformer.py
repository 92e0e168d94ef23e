"""Transformer models of the model zoo: ViT, BERT, GPT-2, LLaMA-2 and SegFormer.

Sequence tensors are ``[S, D]`` (batch 1 excluded). A transformer block is written as linear
projections, an ``attention`` core (QK^T, softmax, AV for all heads), an output projection, a
residual ``add`` and a ``norm``, then the feed-forward linears with their activation.
"""

from __future__ import annotations

from isosched.zoo.builder import GraphBuilder

__all__ = [
    "build_bert_base",
    "build_gpt2",
    "build_gpt2_xl",
    "build_llama2_7b",
    "build_segformer_b0",
    "build_vit_b16",
]


def _pre_norm_block(
    b: GraphBuilder,
    x: str,
    p: str,
    *,
    dim: int,
    heads: int,
    ffn: int,
    causal: bool,
    act: str = "gelu",
) -> str:
    """Pre-LN block (GPT-2, ViT): packed qkv linear of width 3D, biases everywhere."""
    h = b.add("norm", [x], id=f"{p}.ln_1", kind="layer")
    h = b.add("linear", [h], id=f"{p}.attn.qkv", out_features=3 * dim, bias=True)
    h = b.add("attention", [h], id=f"{p}.attn.core", heads=heads, causal=causal)
    h = b.add("linear", [h], id=f"{p}.attn.proj", out_features=dim, bias=True)
    x = b.add("add", [x, h], id=f"{p}.attn.add")
    h = b.add("norm", [x], id=f"{p}.ln_2", kind="layer")
    h = b.add("linear", [h], id=f"{p}.mlp.fc", out_features=ffn, bias=True)
    h = b.add("activation", [h], id=f"{p}.mlp.act", kind=act)
    h = b.add("linear", [h], id=f"{p}.mlp.proj", out_features=dim, bias=True)
    return b.add("add", [x, h], id=f"{p}.mlp.add")


def build_vit_b16(image: int = 224, classes: int = 1000) -> GraphBuilder:
    """ViT-B/16: 12 pre-LN blocks, width 768, 12 heads, MLP 3072, 16x16 patches.

    A 224x224 image gives 14x14 = 196 patch tokens plus the class token (197 tokens). The
    class token and the learned position embedding are ``generic`` layers (kinds
    ``"cls_token"`` and ``"pos_embed"``) carrying their parameters; the classifier is a linear
    layer on the final class token.

    Parameters
    ----------
    image : int
        Square input size, a multiple of 16.
    classes : int
        Classifier outputs.

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    A. Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition
    at Scale", ICLR 2021, Table 1 (ViT-Base).
    """
    dim, depth, heads, ffn, patch = 768, 12, 12, 3072, 16
    if image % patch:
        raise ValueError(f"ViT input size {image} must be a multiple of {patch}")
    tokens = (image // patch) ** 2 + 1
    b = GraphBuilder("vit_b16")
    x = b.add("input", id="input", shape=[3, image, image])
    x = b.add(
        "conv",
        [x],
        id="patch_embed",
        out_channels=dim,
        kernel=patch,
        stride=patch,
        bias=True,
    )
    x = b.add("flatten", [x], id="patch_embed.flatten", start=1)
    x = b.add("transpose", [x], id="patch_embed.transpose", perm=[1, 0])
    x = b.add(
        "generic",
        [x],
        id="cls_token",
        kind="cls_token",
        shape=[tokens, dim],
        weight_elems=dim,
        vector_ops=0,
    )
    x = b.add(
        "generic",
        [x],
        id="pos_embed",
        kind="pos_embed",
        shape=[tokens, dim],
        weight_elems=tokens * dim,
    )
    for i in range(depth):
        x = _pre_norm_block(b, x, f"blocks.{i}", dim=dim, heads=heads, ffn=ffn, causal=False)
    x = b.add("norm", [x], id="norm", kind="layer")
    x = b.add("split", [x], id="cls_select", axis=0, start=0, size=1)
    b.add("linear", [x], id="head", out_features=classes, bias=True)
    return b


def build_bert_base(seq: int = 128) -> GraphBuilder:
    """BERT-base encoder: 12 post-LN layers, d = 768, 12 heads, FFN 3072, plus the pooler.

    Inputs are token ids, segment (token type) ids and position ids, each ``[S]``, embedded
    (vocabulary 30522, 2 segments, 512 positions), summed and layer-normalised. Every layer
    has separate Q, K and V linears with bias. The pooler (a 768x768 linear and tanh on the
    first token) is included; the pre-training heads are not.

    Parameters
    ----------
    seq : int
        Sequence length (at most 512).

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    J. Devlin, M.-W. Chang, K. Lee and K. Toutanova, "BERT: Pre-training of Deep
    Bidirectional Transformers for Language Understanding", NAACL 2019, Section 3
    (BERT-BASE: L=12, H=768, A=12).
    """
    dim, depth, heads, ffn = 768, 12, 12, 3072
    b = GraphBuilder("bert_base")
    ids = b.add("input", id="input_ids", shape=[seq])
    types = b.add("input", id="token_type_ids", shape=[seq])
    pos = b.add("input", id="position_ids", shape=[seq])
    e1 = b.add("embedding", [ids], id="embeddings.word", num_embeddings=30522, dim=dim)
    e2 = b.add("embedding", [types], id="embeddings.token_type", num_embeddings=2, dim=dim)
    e3 = b.add("embedding", [pos], id="embeddings.position", num_embeddings=512, dim=dim)
    x = b.add("add", [e1, e2, e3], id="embeddings.add")
    x = b.add("norm", [x], id="embeddings.ln", kind="layer")
    for i in range(depth):
        p = f"layer{i}"
        q = b.add("linear", [x], id=f"{p}.attn.q", out_features=dim, bias=True)
        k = b.add("linear", [x], id=f"{p}.attn.k", out_features=dim, bias=True)
        v = b.add("linear", [x], id=f"{p}.attn.v", out_features=dim, bias=True)
        h = b.add("attention", [q, k, v], id=f"{p}.attn.core", heads=heads)
        h = b.add("linear", [h], id=f"{p}.attn.out", out_features=dim, bias=True)
        h = b.add("add", [h, x], id=f"{p}.attn.add")
        x = b.add("norm", [h], id=f"{p}.attn.ln", kind="layer")
        h = b.add("linear", [x], id=f"{p}.ffn.in", out_features=ffn, bias=True)
        h = b.add("activation", [h], id=f"{p}.ffn.act", kind="gelu")
        h = b.add("linear", [h], id=f"{p}.ffn.out", out_features=dim, bias=True)
        h = b.add("add", [h, x], id=f"{p}.ffn.add")
        x = b.add("norm", [h], id=f"{p}.ffn.ln", kind="layer")
    x = b.add("split", [x], id="pooler.first_token", axis=0, start=0, size=1)
    x = b.add("linear", [x], id="pooler.dense", out_features=dim, bias=True)
    b.add("activation", [x], id="pooler.act", kind="tanh")
    return b


def _gpt2(name: str, *, dim: int, depth: int, heads: int, seq: int) -> GraphBuilder:
    """GPT-2 decoder (prefill of ``seq`` tokens) with the LM head tied to the token table.

    The LM head is a ``matmul`` of the final hidden states with the token embedding table
    (``transpose_b``); the table enters the graph through a ``generic`` layer of kind
    ``"tied_weight"`` that reads the embedding layer and holds no parameters of its own, so
    the parameter count is the published one (the 50257 x D table is counted once).
    """
    vocab, positions = 50257, 1024
    b = GraphBuilder(name)
    ids = b.add("input", id="input_ids", shape=[seq])
    pos = b.add("input", id="position_ids", shape=[seq])
    wte = b.add("embedding", [ids], id="wte", num_embeddings=vocab, dim=dim)
    wpe = b.add("embedding", [pos], id="wpe", num_embeddings=positions, dim=dim)
    x = b.add("add", [wte, wpe], id="embed.add")
    for i in range(depth):
        x = _pre_norm_block(b, x, f"h{i}", dim=dim, heads=heads, ffn=4 * dim, causal=True)
    x = b.add("norm", [x], id="ln_f", kind="layer")
    table = b.add(
        "generic",
        [wte],
        id="wte.weight",
        kind="tied_weight",
        shape=[vocab, dim],
        vector_ops=0,
    )
    b.add("matmul", [x, table], id="lm_head", transpose_b=True)
    return b


def build_gpt2(seq: int = 128) -> GraphBuilder:
    """GPT-2 small (124M): 12 layers, d = 768, 12 heads, causal, with the 768x50257 LM head.

    Parameters
    ----------
    seq : int
        Prompt length processed in one prefill pass (at most 1024).

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    A. Radford, J. Wu, R. Child, D. Luan, D. Amodei and I. Sutskever, "Language Models are
    Unsupervised Multitask Learners", OpenAI 2019, Table 2 (117M/124M row: 12 layers,
    d_model 768).
    """
    return _gpt2("gpt2", dim=768, depth=12, heads=12, seq=seq)


def build_gpt2_xl(seq: int = 128) -> GraphBuilder:
    """GPT-2 XL (1.5B): 48 layers, d = 1600, 25 heads, causal, with the tied LM head.

    Parameters
    ----------
    seq : int
        Prompt length processed in one prefill pass (at most 1024).

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    A. Radford, J. Wu, R. Child, D. Luan, D. Amodei and I. Sutskever, "Language Models are
    Unsupervised Multitask Learners", OpenAI 2019, Table 2 (1542M row: 48 layers,
    d_model 1600).
    """
    return _gpt2("gpt2_xl", dim=1600, depth=48, heads=25, seq=seq)


def build_llama2_7b(seq: int = 128) -> GraphBuilder:
    """LLaMA-2-7B prefill: 32 layers, d = 4096, 32 heads, SwiGLU FFN 11008, RMSNorm.

    Pre-RMSNorm blocks with bias-free Q, K, V and output projections, rotary position
    embedding on Q and K (``generic`` layers of kind ``"rope"``), causal attention, and the
    SwiGLU feed-forward ``down(silu(gate(x)) * up(x))``; the 4096x32000 LM head is untied
    from the token embedding, as in the released weights.

    Parameters
    ----------
    seq : int
        Prompt length processed in one prefill pass (at most 4096).

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    H. Touvron et al., "Llama 2: Open Foundation and Fine-Tuned Chat Models",
    arXiv:2307.09288, 2023, Section 2.2 and Table 1 (7B); architecture as in H. Touvron et
    al., "LLaMA: Open and Efficient Foundation Language Models", arXiv:2302.13971, 2023.
    """
    dim, depth, heads, ffn, vocab = 4096, 32, 32, 11008, 32000
    b = GraphBuilder("llama2_7b")
    ids = b.add("input", id="input_ids", shape=[seq])
    x = b.add("embedding", [ids], id="embed_tokens", num_embeddings=vocab, dim=dim)
    for i in range(depth):
        p = f"layers.{i}"
        h = b.add("norm", [x], id=f"{p}.input_norm", kind="rms")
        q = b.add("linear", [h], id=f"{p}.attn.q", out_features=dim)
        k = b.add("linear", [h], id=f"{p}.attn.k", out_features=dim)
        v = b.add("linear", [h], id=f"{p}.attn.v", out_features=dim)
        # Rotary embedding: x*cos + rotate_half(x)*sin, about 3 element ops per value.
        rope = {"kind": "rope", "shape": [seq, dim], "vector_ops": 3 * seq * dim}
        q = b.add("generic", [q], id=f"{p}.attn.q_rope", **rope)
        k = b.add("generic", [k], id=f"{p}.attn.k_rope", **rope)
        h = b.add("attention", [q, k, v], id=f"{p}.attn.core", heads=heads, causal=True)
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


def _to_tokens(b: GraphBuilder, x: str, p: str) -> str:
    """``[C, H, W]`` -> ``[H*W, C]``."""
    x = b.add("flatten", [x], id=f"{p}.flatten", start=1)
    return b.add("transpose", [x], id=f"{p}.to_tokens", perm=[1, 0])


def _to_image(b: GraphBuilder, x: str, p: str, h: int, w: int) -> str:
    """``[H*W, C]`` -> ``[C, H, W]``."""
    c = b.shape(x)[-1]
    x = b.add("transpose", [x], id=f"{p}.to_channels", perm=[1, 0])
    return b.add("reshape", [x], id=f"{p}.to_image", shape=[c, h, w])


def build_segformer_b0(image: int = 512, classes: int = 150) -> GraphBuilder:
    """SegFormer-B0: MiT-B0 encoder and the all-MLP decoder, 512x512 input, 150 classes.

    MiT-B0 has four stages of widths 32/64/160/256, two blocks each, 1/2/5/8 heads and
    spatial-reduction ratios 8/4/2/1. Each stage starts with an overlapping patch embedding
    (7x7 stride 4, then 3x3 stride 2, with bias, then layer norm). Efficient self-attention
    takes K and V from a sequence shrunk by an R x R stride-R convolution (plus layer norm);
    the Mix-FFN is linear (4x expansion), 3x3 depthwise convolution, GELU, linear. The decoder
    maps each stage to 256 channels with a linear layer, upsamples to 1/4 resolution
    (128x128), concatenates, fuses with a 1x1 convolution + batch norm + ReLU and predicts
    ``classes`` maps with a 1x1 convolution.

    Parameters
    ----------
    image : int
        Square input size, a multiple of 32.
    classes : int
        Segmentation classes (150 for ADE20K).

    Returns
    -------
    GraphBuilder
        The model's layers.

    References
    ----------
    E. Xie, W. Wang, Z. Yu, A. Anandkumar, J. M. Alvarez and P. Luo, "SegFormer: Simple and
    Efficient Design for Semantic Segmentation with Transformers", NeurIPS 2021, Sections 3.1
    and 3.2 and the MiT-B0 settings of the appendix.
    """
    if image % 32:
        raise ValueError(f"SegFormer input size {image} must be a multiple of 32")
    widths, depths, heads, ratios = [32, 64, 160, 256], [2, 2, 2, 2], [1, 2, 5, 8], [8, 4, 2, 1]
    dec_dim = 256
    b = GraphBuilder("segformer_b0")
    x = b.add("input", id="input", shape=[3, image, image])
    stage_out: list[str] = []
    for s in range(4):
        p = f"stage{s + 1}"
        kernel, stride = (7, 4) if s == 0 else (3, 2)
        x = b.add(
            "conv",
            [x],
            id=f"{p}.patch_embed",
            out_channels=widths[s],
            kernel=kernel,
            stride=stride,
            padding=kernel // 2,
            bias=True,
        )
        _, h, w = b.shape(x)
        x = _to_tokens(b, x, f"{p}.patch_embed")
        x = b.add("norm", [x], id=f"{p}.patch_embed.ln", kind="layer")
        dim, r = widths[s], ratios[s]
        for i in range(depths[s]):
            q_id = f"{p}.block{i}"
            t = b.add("norm", [x], id=f"{q_id}.ln_1", kind="layer")
            q = b.add("linear", [t], id=f"{q_id}.attn.q", out_features=dim, bias=True)
            kv_src = t
            if r > 1:
                img = _to_image(b, t, f"{q_id}.attn.sr", h, w)
                img = b.add(
                    "conv",
                    [img],
                    id=f"{q_id}.attn.sr",
                    out_channels=dim,
                    kernel=r,
                    stride=r,
                    bias=True,
                )
                kv_src = _to_tokens(b, img, f"{q_id}.attn.sr")
                kv_src = b.add("norm", [kv_src], id=f"{q_id}.attn.sr.ln", kind="layer")
            k = b.add("linear", [kv_src], id=f"{q_id}.attn.k", out_features=dim, bias=True)
            v = b.add("linear", [kv_src], id=f"{q_id}.attn.v", out_features=dim, bias=True)
            a = b.add("attention", [q, k, v], id=f"{q_id}.attn.core", heads=heads[s])
            a = b.add("linear", [a], id=f"{q_id}.attn.proj", out_features=dim, bias=True)
            x = b.add("add", [x, a], id=f"{q_id}.attn.add")
            t = b.add("norm", [x], id=f"{q_id}.ln_2", kind="layer")
            t = b.add("linear", [t], id=f"{q_id}.ffn.fc1", out_features=4 * dim, bias=True)
            img = _to_image(b, t, f"{q_id}.ffn.dw", h, w)
            img = b.add(
                "conv",
                [img],
                id=f"{q_id}.ffn.dwconv",
                out_channels=4 * dim,
                kernel=3,
                padding=1,
                groups=4 * dim,
                bias=True,
            )
            t = _to_tokens(b, img, f"{q_id}.ffn.dw")
            t = b.add("activation", [t], id=f"{q_id}.ffn.act", kind="gelu")
            t = b.add("linear", [t], id=f"{q_id}.ffn.fc2", out_features=dim, bias=True)
            x = b.add("add", [x, t], id=f"{q_id}.ffn.add")
        x = b.add("norm", [x], id=f"{p}.ln", kind="layer")
        x = _to_image(b, x, p, h, w)
        stage_out.append(x)
    out_size = image // 4
    ups: list[str] = []
    for s in reversed(range(4)):
        p = f"decode.linear_c{s + 1}"
        _, h, w = b.shape(stage_out[s])
        t = _to_tokens(b, stage_out[s], p)
        t = b.add("linear", [t], id=p, out_features=dec_dim, bias=True)
        img = _to_image(b, t, p, h, w)
        if h != out_size:
            img = b.add(
                "resize", [img], id=f"{p}.upsample", size=[out_size, out_size], mode="bilinear"
            )
        ups.append(img)
    x = b.add("concat", ups, id="decode.concat", axis=0)
    x = b.add("conv", [x], id="decode.fuse", out_channels=dec_dim, kernel=1)
    x = b.add("norm", [x], id="decode.fuse.bn", kind="batch")
    x = b.add("activation", [x], id="decode.fuse.act", kind="relu")
    b.add("conv", [x], id="decode.pred", out_channels=classes, kernel=1, bias=True)
    return b
