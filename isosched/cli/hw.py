"""``isosched hw list|show``: the hardware presets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from isosched.cli.app import app, emit_json

hw_app = typer.Typer(help="Hardware presets and files.", no_args_is_help=True)
app.add_typer(hw_app, name="hw")


@hw_app.command("list")
def hw_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the hardware presets."""
    from isosched.io.hardware_json import load_hardware, preset_names

    rows: list[dict[str, Any]] = []
    for name in preset_names():
        hw = load_hardware(name)
        rows.append(
            {
                "name": name,
                "mesh": list(hw.mesh),
                "tiles": hw.tiles,
                "tops": round(2 * hw.peak_macs_per_cycle * hw.clock_ghz / 1000, 1),
                "sram_mib_per_tile": hw.tile.sram_bytes / 2**20,
                "dram_gb_s": hw.dram.bandwidth_gb_s,
            }
        )
    if as_json:
        emit_json(rows)
        return
    print(f"{'preset':<18} {'mesh':>7} {'TOPS':>8} {'SRAM/tile':>10} {'DRAM':>10}")
    for r in rows:
        mesh = "x".join(str(d) for d in r["mesh"])
        print(
            f"{r['name']:<18} {mesh:>7} {r['tops']:>8.1f} "
            f"{r['sram_mib_per_tile']:>7.1f}MiB {r['dram_gb_s']:>6.1f}GB/s"
        )


@hw_app.command("show")
def hw_show(
    hardware: Annotated[str, typer.Argument(help="Preset name or hardware file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a preset or hardware file."""
    from isosched.io.hardware_json import load_hardware

    hw = load_hardware(hardware)
    doc = hw.model_dump(mode="json", by_alias=True)
    if as_json:
        emit_json(doc)
        return
    print(f"{hw.name}: {hw.description}")
    for key in ("mesh", "clock_ghz", "tile", "noc", "dram", "energy", "utilisation", "dataflow"):
        print(f"  {key:<12} {doc[key]}")
