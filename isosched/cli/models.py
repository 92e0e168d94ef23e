"""``isosched models list|show|build`` and ``isosched import-onnx``."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from isosched.cli.app import app, emit_json
from isosched.errors import IsoschedError

if TYPE_CHECKING:
    from isosched.graph.model import Graph
    from isosched.hw.model import Hardware

models_app = typer.Typer(help="The model zoo and graph files.", no_args_is_help=True)
app.add_typer(models_app, name="models")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _summary(g: Graph) -> dict[str, Any]:
    return {
        "name": g.name,
        "layers": len(g),
        "edges": len(g.edges),
        "macs": g.macs,
        "params": g.params,
    }


#: The committed zoo summary (``make zoo`` writes it; tests/test_zoo.py keeps it equal to the
#: builders): read instead of building every zoo graph, so that ``models list`` starts at once.
ZOO_MANIFEST = Path(__file__).resolve().parents[2] / "models" / "MANIFEST.json"


def _zoo_rows() -> list[dict[str, Any]]:
    """Name, layers, edges, MACs and parameters of every zoo model, in zoo order."""
    keys = ("name", "layers", "edges", "macs", "params")
    try:
        manifest = json.loads(ZOO_MANIFEST.read_text(encoding="utf-8"))
        return [{k: entry[k] for k in keys} for entry in manifest]
    except (OSError, ValueError, KeyError, TypeError):  # not a source checkout: build them
        from isosched.zoo import load_zoo_model, zoo_names

        return [_summary(load_zoo_model(n)) for n in zoo_names()]


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """List the zoo: name, layers, edges, MACs, parameters."""
    rows = _zoo_rows()
    if as_json:
        emit_json(rows)
        return
    wide = max([14, *(len(r["name"]) for r in rows)])
    print(f"{'model':<{wide}} {'layers':>7} {'edges':>7} {'GMACs':>9} {'Mparams':>9}")
    for r in rows:
        print(
            f"{r['name']:<{wide}} {r['layers']:>7} {r['edges']:>7} "
            f"{r['macs'] / 1e9:>9.2f} {r['params'] / 1e6:>9.1f}"
        )


def _layer_costs(g: Graph, hw: Hardware, tiles: int) -> list[dict[str, Any]]:
    from isosched.cost import lts_layer_cost, tss_layer_cost

    out = []
    sources = {lay.id for lay in g if not lay.inputs}
    sinks = {lay.id for lay in g} - {src for src, _ in g.edges}
    for lay in g:
        lts = lts_layer_cost(lay, tiles, hw)
        tss = tss_layer_cost(
            lay, tiles, hw, input_from_dram=lay.id in sources, output_to_dram=lay.id in sinks
        )
        out.append(
            {
                "tiles": tiles,
                "lts_us": hw.cycles_to_us(lts.cycles),
                "lts_energy_uj": lts.energy.total * 1e-6,
                "lts_bound": lts.bound,
                "tss_us": hw.cycles_to_us(tss.cycles),
                "tss_energy_uj": tss.energy.total * 1e-6,
                "tss_bound": tss.bound,
            }
        )
    return out


def _uncertainty(g: Graph) -> tuple[tuple[int, int] | None, str | None]:
    """Counts of uncertain layers of an imported graph and their warning line (if any)."""
    if "guessed_shape_layers" not in g.meta and "unknown_compute_layers" not in g.meta:
        return None, None  # not an import that counts them: nothing to load
    from isosched.io.onnx.uncertainty import uncertainty_counts, uncertainty_line

    return uncertainty_counts(g.meta), uncertainty_line(g.meta)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="Zoo name, graph file (.json) or ONNX file.")],
    hw: Annotated[
        str | None, typer.Option("--hw", help="Also price every layer on this hardware.")
    ] = None,
    tiles: Annotated[
        int | None, typer.Option("--tiles", min=1, help="Tiles per layer (default: all).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-layer shapes, MACs and bytes; with --hw, each layer's LTS and TSS cost."""
    from isosched.io.hardware_json import load_hardware
    from isosched.io.model_source import load_model

    g = load_model(model)
    hardware = load_hardware(hw) if hw else None
    if tiles is not None and hardware is None:
        raise IsoschedError("--tiles prices the layers on a chip: give --hw as well")
    k = tiles or (hardware.tiles if hardware else 1)
    if hardware is not None and k > hardware.tiles:
        raise IsoschedError(f"--tiles {k} exceeds the {hardware.tiles} tiles of {hardware.name}")
    costs = _layer_costs(g, hardware, k) if hardware else None
    uncertain = g.meta.get("uncertain_layers") or {}
    layers = []
    for i, lay in enumerate(g):
        row: dict[str, Any] = {
            "id": lay.id,
            "op": lay.op,
            "inputs": list(lay.inputs),
            "output_shape": list(lay.output_shape),
            "macs": lay.macs,
            "vector_ops": lay.vector_ops,
            "weight_bytes": lay.weight_bytes,
            "input_bytes": lay.input_bytes,
            "output_bytes": lay.output_bytes,
        }
        if lay.id in uncertain:
            row["uncertain"] = str(uncertain[lay.id])
        if costs:
            row["cost"] = costs[i]
        layers.append(row)
    doc: dict[str, Any] = {
        "name": g.name,
        "dtype": g.dtype,
        "macs": g.macs,
        "params": g.params,
        "weight_bytes": g.weight_bytes,
        "layer_count": len(g),
        "edges": len(g.edges),
        "layers": layers,
    }
    counts, line = _uncertainty(g)
    if counts is not None:
        doc["guessed_shape_layers"], doc["unknown_compute_layers"] = counts
    if hardware and costs:
        doc["hw"] = hardware.name
        doc["lts_total_us"] = sum(c["lts_us"] for c in costs)
        doc["lts_total_energy_uj"] = sum(c["lts_energy_uj"] for c in costs)
    if as_json:
        emit_json(doc)
        return
    print(
        f"{g.name}: {len(g)} layers, {len(g.edges)} edges, {g.macs / 1e9:.3f} GMACs, "
        f"{g.params / 1e6:.2f} M params ({g.dtype})"
    )
    if counts is not None:
        print(f"uncertain: {line}" if line else "uncertain: none (every shape and MAC known)")
    head = f"{'layer':<28} {'op':<11} {'output':<16} {'MMACs':>9} {'weights KiB':>11}"
    if costs:
        head += f" {'LTS us':>9} {'bound':>7} {'TSS us':>9} {'bound':>7}"
    print(head)
    for row in layers:
        shape = "x".join(str(d) for d in row["output_shape"])
        line = (
            f"{row['id'][:28]:<28} {row['op']:<11} {shape[:16]:<16} "
            f"{row['macs'] / 1e6:>9.2f} {row['weight_bytes'] / 1024:>11.1f}"
        )
        if "cost" in row:
            c = row["cost"]
            line += (
                f" {c['lts_us']:>9.2f} {c['lts_bound']:>7} {c['tss_us']:>9.2f} {c['tss_bound']:>7}"
            )
        print(line)
    if hardware and costs:
        print(
            f"LTS on {k} tiles of {hardware.name}: {doc['lts_total_us'] / 1e3:.3f} ms, "
            f"{doc['lts_total_energy_uj'] / 1e3:.3f} mJ (layer by layer, all through DRAM)"
        )


@models_app.command("build")
def models_build(
    directory: Annotated[Path, typer.Argument(help="Output folder.")] = Path("models"),
) -> None:
    """Write every zoo model as a graph file plus MANIFEST.json into DIRECTORY."""
    from isosched.zoo import write_zoo

    directory.mkdir(parents=True, exist_ok=True)
    manifest = write_zoo(directory)
    sys.stderr.write(f"wrote {len(manifest)} models and MANIFEST.json to {directory}\n")


@app.command("import-onnx")
def import_onnx(
    source: Annotated[Path, typer.Argument(help="ONNX file (weights may be absent).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Graph file to write.")],
    name: Annotated[str | None, typer.Option("--name", help="Model name.")] = None,
    dim: Annotated[
        list[str] | None,
        typer.Option(
            "--dim",
            help="Value of a symbolic dimension, NAME=VALUE (repeatable), e.g. --dim sequence=128.",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit 2 (writing nothing) when any layer has a guessed shape or unknown compute.",
        ),
    ] = False,
) -> None:
    """Convert an ONNX model into an isosched.graph/v1 file.

    Layers whose shape was guessed or whose work is unknown are counted in the file's meta and
    reported in one warning line; --strict refuses such a model instead.
    """
    from isosched.graph.model import parse_graph
    from isosched.io.graph_json import write_graph
    from isosched.io.onnx import UnknownOpWarning, parse_dims, read_onnx, uncertainty_line

    dims = parse_dims(dim or [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doc = read_onnx(source, name=name, dims=dims)
    line = uncertainty_line(doc["meta"])
    if strict and line is not None:
        raise IsoschedError(f"{source.name}: {line}; refused (--strict)")
    for w in caught:
        if not issubclass(w.category, UnknownOpWarning):  # summed up in the line below
            sys.stderr.write(f"isosched: warning: {w.message}\n")
    if line is not None:
        sys.stderr.write(f"isosched: warning: {line}\n")
    g = parse_graph(doc)
    write_graph(g, output)
    sys.stderr.write(
        f"{g.name}: {len(g)} layers, {g.macs / 1e9:.3f} GMACs, {g.params / 1e6:.2f} M params "
        f"-> {output}\n"
    )
