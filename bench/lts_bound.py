"""A lone job under LTS on the whole chip against its simple bound (issue 15, "done when").

For every zoo model: the LTS latency on every tile of the chip with all of the DRAM bandwidth
(layer outputs kept on-chip when they fit) over max(compute time of its layers on the whole
chip, (weights + input + output) / DRAM bandwidth). Prints a Markdown table.

Run: ``python bench/lts_bound.py [--hw edge-8x8]``.
"""

from __future__ import annotations

import argparse

from isosched.cost import compute_cycles, lts_job_cost, roofline_cycles
from isosched.io.hardware_json import load_hardware
from isosched.zoo import load_zoo_model, zoo_names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hw", default="edge-8x8")
    args = ap.parse_args()
    hw = load_hardware(args.hw)
    via = hw.model_copy(
        update={"dataflow": hw.dataflow.model_copy(update={"lts_activations_via_dram": True})}
    )
    print("| model | LTS ms | bound ms | ratio | via-DRAM ms | on-chip MB | DRAM MB |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name in zoo_names():
        g = load_zoo_model(name)
        layers = list(g)
        cost = lts_job_cost(layers, hw.tiles, hw)
        lat = roofline_cycles(cost.pieces, hw.dram_bytes_per_cycle)
        comp = sum(compute_cycles(lay, hw.tiles, hw) for lay in layers if lay.op != "input")
        consumers = g.consumers()
        inp = sum(lay.output_bytes for lay in layers if lay.op == "input")
        out = sum(lay.output_bytes for lay in layers if not consumers[lay.id])
        io = (g.weight_bytes + inp + out) / hw.dram_bytes_per_cycle
        bound = max(comp, io)
        dram = lts_job_cost(layers, hw.tiles, via)
        lat_via = roofline_cycles(dram.pieces, hw.dram_bytes_per_cycle)
        worst = max(worst, lat / bound)
        print(
            f"| {name} | {hw.cycles_to_ms(lat):.3f} | {hw.cycles_to_ms(bound):.3f} | "
            f"{lat / bound:.2f} | {hw.cycles_to_ms(lat_via):.3f} | "
            f"{cost.on_chip_bytes / 1e6:.1f} | {cost.dram_bytes / 1e6:.1f} |"
        )
    print(f"\nworst ratio {worst:.2f} (target <= 1.25 where activations fit on-chip)")


if __name__ == "__main__":
    main()
