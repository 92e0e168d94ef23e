"""The conversion context shared by the ONNX converters.

:class:`Ctx` holds the state of one conversion (which tensors are activations, constants or
static, the layers emitted so far and the notes) and emits layers checked against the IR's
shape rules, falling back to ``generic`` layers when they disagree.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from isosched.errors import GraphError
from isosched.graph.ops import OpResult, infer_op
from isosched.graph.schema import MAX_TENSOR_ELEMENTS, LayerSpec
from isosched.io.onnx.common import (
    Act,
    Array,
    Shape,
    drop_batch,
    node_base,
    node_inputs,
    node_label,
    numel,
)
from isosched.io.onnx.shapes import elem_types, infer_node, known_op

__all__ = ["Converter", "Ctx", "acts_of", "first_act", "generic_node"]


#: Notes kept in the document's meta.
_MAX_NOTES = 200


#: Ops through which a weight keeps its identity (a transposed or cast weight is the same one).
_WEIGHT_VIEWS = frozenset(
    {"Transpose", "Cast", "CastLike", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten"}
)


_LAYER = TypeAdapter(LayerSpec)


_COMMON = frozenset({"id", "op", "inputs", "name"})


_ID_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")


class Ctx:
    """State of one conversion: tensor classification, emitted layers and notes."""

    def __init__(
        self,
        model: Any,
        shapes: dict[str, Shape | None],
        guessed: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.opsets = {o.domain or "ai.onnx": int(o.version) for o in model.opset_import}
        self.shapes = shapes
        self.guessed: Mapping[str, str] = guessed or {}
        #: nesting of the subgraph being imported (0 for the model's main graph)
        self.depth = 0
        #: reasons per layer id: ``("shape" | "compute", why)``
        self.uncertain: dict[str, list[tuple[str, str]]] = {}
        self._node_flags: list[tuple[str, str]] = []
        self._node_start = 0
        #: the layer that first carried each weight tensor (tied weights are counted once)
        self.weight_owner: dict[str, str] = {}
        self.producer = {o: n for n in model.graph.node for o in n.output if o}
        self._types: dict[str, int] | None = None
        self.acts: dict[str, Act] = {}
        self.consts: dict[str, Array] = {}
        self.statics: set[str] = set()
        self.layers: list[dict[str, Any]] = []
        self.layer_by_id: dict[str, dict[str, Any]] = {}
        self.ids: set[str] = set()
        self.notes: list[str] = []
        self.unmapped: Counter[str] = Counter()
        self.warned: set[str] = set()
        self.uses: Counter[str] = Counter()
        self.graph_outputs = {o.name for o in model.graph.output}
        for node in model.graph.node:
            for name in node_inputs(node):
                self.uses[name] += 1

    # -- bookkeeping ---------------------------------------------------------------------

    def note(self, msg: str) -> None:
        """Record a conversion note (up to a limit) for the document's meta."""
        if len(self.notes) < _MAX_NOTES:
            self.notes.append(msg)

    def begin_node(self) -> None:
        """Start converting a node: the flags raised until :meth:`end_node` are its own."""
        self._node_flags = []
        self._node_start = len(self.layers)

    def end_node(self) -> None:
        """Attach the current node's flags to every layer it emitted."""
        if not self._node_flags:
            return
        for lay in self.layers[self._node_start :]:
            reasons = self.uncertain.setdefault(lay["id"], [])
            for flag in self._node_flags:
                if flag not in reasons:
                    reasons.append(flag)
        self._node_flags = []

    def flag_shape(self, why: str) -> None:
        """The current node's output shape is a guess."""
        if ("shape", why) not in self._node_flags:
            self._node_flags.append(("shape", why))

    def flag_compute(self, why: str) -> None:
        """The current node's work (MACs, vector operations) is not known for sure."""
        if ("compute", why) not in self._node_flags:
            self._node_flags.append(("compute", why))

    def weight_source(self, name: str) -> str:
        """The tensor a weight is a view of (through transposes, casts and reshapes)."""
        for _ in range(16):
            node = self.producer.get(name)
            if node is None or node.op_type not in _WEIGHT_VIEWS or not node.input:
                break
            if any(self.is_act(i) for i in node.input):
                break
            name = node.input[0]
        return name

    def tied(self, name: str) -> str | None:
        """The earlier layer that holds this weight tensor (tied weights), if any."""
        return self.weight_owner.get(self.weight_source(name))

    def own_weight(self, name: str, layer: str) -> None:
        """Record that ``layer`` holds (and counts) the weight tensor ``name``."""
        self.weight_owner.setdefault(self.weight_source(name), layer)

    def unique_id(self, base: str) -> str:
        """A valid layer id derived from ``base`` and not used yet."""
        cand = _ID_BAD.sub("_", base).strip("_.-")[:200] or "layer"
        lid, k = cand, 2
        while lid in self.ids:
            lid = f"{cand}_{k}"
            k += 1
        self.ids.add(lid)
        return lid

    def is_act(self, name: str) -> bool:
        """Whether the tensor is an activation."""
        return bool(name) and name in self.acts

    def full_shape(self, name: str) -> Shape | None:
        """ONNX shape of a tensor (activation, constant or inferred), if known."""
        if name in self.acts:
            return self.acts[name].full
        if name in self.consts:
            return tuple(int(d) for d in self.consts[name].shape)
        return self.shapes.get(name)

    def const(self, name: str) -> Array | None:
        """Value of a constant tensor, if it is one."""
        return self.consts.get(name) if name else None

    def out_full(self, node: Any, idx: int = 0) -> Shape:
        """ONNX output shape of a node; when unknown, its first data input's, flagged as a guess.

        Only activations count as data inputs: a weight, a bias or a constant never lends its
        shape.
        """
        name = node.output[idx]
        shape = self.shapes.get(name)
        if shape is not None:
            if name in self.guessed:
                self.flag_shape(self.guessed[name])
            return shape
        if known_op(node, self.opsets):
            # ONNX knows the op but met it before an input was shaped: ask it again now
            if self._types is None:
                self._types = elem_types(self.model)
            known = {i: self.full_shape(i) for i in node.input if i}
            got = infer_node(node, known, self.consts, self._types, self.model.opset_import)
            if got is not None:
                for o, s in zip(node.output, got, strict=False):
                    if o and s is not None and self.shapes.get(o) is None:
                        self.shapes[o] = s
                found = self.shapes.get(name)
                if found is not None:
                    return found
        for i in node.input:
            if self.is_act(i):
                why = f"output {name!r} shape unknown, taken from data input {i!r}"
                self.note(f"{node_label(node)}: {why}")
                self.flag_shape(why)
                return self.acts[i].full
        why = f"output {name!r} shape unknown, [1] used"
        self.note(f"{node_label(node)}: {why}")
        self.flag_shape(why)
        return (1,)

    # -- emitting layers -----------------------------------------------------------------

    def emit(
        self,
        base: str,
        op: str,
        params: Mapping[str, Any],
        inputs: Sequence[Act],
        full: Shape,
        *,
        kind: str,
        macs: int = 0,
        weight_elems: int = 0,
        vector_ops: int | None = None,
        fallback: str = "generic",
        why: str | None = None,
    ) -> Act:
        """Add one layer, checked against the IR's rules; fall back when they disagree.

        Parameters
        ----------
        base : str
            Wanted layer id (made unique here).
        op, params : str, Mapping
            IR op and its fields.
        inputs : sequence of Act
            Operands.
        full : tuple of int
            ONNX output shape (batch included); the layer must produce its IR shape.
        kind : str
            ONNX op type, used for a generic fallback.
        macs, weight_elems, vector_ops : int
            Work of a generic fallback.
        fallback : {"generic", "reshape"}
            What to emit when the mapping fails; ``reshape`` for pure layout ops.
        why : str, optional
            Force the fallback with this reason.
        """
        want = drop_batch(full)
        in_ids = [a.layer for a in inputs]
        in_shapes = [a.ir for a in inputs]
        if why is None:
            doc: dict[str, Any] = {"id": "x", "op": op, **params}
            if in_ids:
                doc["inputs"] = in_ids
            res, why = self._check(doc, in_shapes)
            if why is None and res is not None and res.shape != want:
                why = f"{op} gives {list(res.shape)}, ONNX says {list(want)}"
            if why is None:
                return self.add(base, op, params, in_ids, full, want)
        self.note(f"{base}: {kind} as {fallback} ({why})")
        if fallback == "reshape" and len(inputs) == 1 and numel(inputs[0].ir) == numel(want):
            return self.add(base, "reshape", {"shape": list(want)}, in_ids, full, want)
        return self.generic(
            base, kind, inputs, full, macs=macs, weight_elems=weight_elems, vector_ops=vector_ops
        )

    def generic(
        self,
        base: str,
        kind: str,
        inputs: Sequence[Act],
        full: Shape,
        *,
        macs: int = 0,
        weight_elems: int = 0,
        vector_ops: int | None = None,
    ) -> Act:
        """Add a ``generic`` layer with an explicit shape and work."""
        want = drop_batch(full)
        if len(want) > 8 or any(d < 1 for d in want):
            self.note(f"{base}: shape {list(want)} not representable, used [{max(1, numel(want))}]")
            want = (max(1, numel(want)),)
        params: dict[str, Any] = {
            "kind": kind[:128],
            "shape": list(want),
            "macs": int(macs),
            "weight_elems": int(weight_elems),
        }
        if vector_ops is not None:
            params["vector_ops"] = int(vector_ops)
        return self.add(base, "generic", params, [a.layer for a in inputs], full, want)

    def _check(
        self, doc: dict[str, Any], in_shapes: Sequence[Shape]
    ) -> tuple[OpResult | None, str | None]:
        try:
            spec = _LAYER.validate_python(doc)
        except ValidationError as exc:
            err = exc.errors()[0]
            return None, f"{'.'.join(str(p) for p in err['loc'][1:])}: {err['msg']}"
        params = {
            k: v
            for k, v in spec.model_dump(by_alias=True, exclude_none=True).items()
            if k not in _COMMON
        }
        try:
            res = infer_op(spec.op, params, list(in_shapes))
        except GraphError as exc:
            return None, str(exc)
        if numel(res.shape) > MAX_TENSOR_ELEMENTS:
            return None, "output too large"
        return res, None

    def add(
        self,
        base: str,
        op: str,
        params: Mapping[str, Any],
        in_ids: Sequence[str],
        full: Shape,
        ir: Shape,
    ) -> Act:
        """Add one layer as given, without checks, and return its activation."""
        lid = self.unique_id(base)
        doc: dict[str, Any] = {"id": lid, "op": op}
        if in_ids:
            doc["inputs"] = list(in_ids)
        doc.update(params)
        self.layers.append(doc)
        self.layer_by_id[lid] = doc
        return Act(lid, tuple(full), tuple(ir))

    def bind(self, name: str, act: Act) -> None:
        """Make ``act`` the value of the ONNX tensor ``name``."""
        if name:
            self.acts[name] = act

    def bind_extra_outputs(self, node: Any, base: str, first: Act) -> None:
        """Outputs past the first: zero-work ``generic`` layers reading the first one."""
        for k, out in enumerate(node.output[1:], start=1):
            if not out or (self.uses[out] == 0 and out not in self.graph_outputs):
                continue
            full = self.out_full(node, k)
            act = self.generic(f"{base}_out{k}", node.op_type, [first], full, vector_ops=0)
            self.bind(out, act)


Converter = Callable[[Ctx, Any], None]


def acts_of(ctx: Ctx, node: Any) -> list[Act]:
    """The activations a node reads, in operand order."""
    return [ctx.acts[i] for i in node.input if ctx.is_act(i)]


def first_act(ctx: Ctx, node: Any) -> Act:
    """The first activation a node reads."""
    acts = acts_of(ctx, node)
    if not acts:  # pragma: no cover - converters only run on nodes reading an activation
        raise GraphError(f"{node_label(node)} reads no activation")
    return acts[0]


def generic_node(
    ctx: Ctx, node: Any, *, macs: int = 0, vector_ops: int | None = None, weight_elems: int = 0
) -> None:
    """Convert a node to one ``generic`` layer with the given work."""
    base = node_base(node)
    act = ctx.generic(
        base,
        node.op_type,
        acts_of(ctx, node),
        ctx.out_full(node),
        macs=macs,
        vector_ops=vector_ops,
        weight_elems=weight_elems,
    )
    ctx.bind(node.output[0], act)
    ctx.bind_extra_outputs(node, base, act)
