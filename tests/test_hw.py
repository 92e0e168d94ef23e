"""Hardware presets and files."""

import json

import pytest

from isosched.errors import HardwareError
from isosched.io.hardware_json import hardware_json_schema, load_hardware, preset_names


def test_presets_exist_and_match_design():
    assert preset_names() == ["datacenter-16x16", "edge-4x4", "edge-8x8", "wafer-64x64"]
    hw = load_hardware("edge-8x8")
    assert hw.mesh == (8, 8)
    assert hw.tile.macs_per_cycle == 1024
    assert hw.tile.sram_bytes == 2**20
    assert hw.noc.link_bytes_per_cycle == 32
    assert hw.dram.bandwidth_gb_s == 64
    assert hw.energy.noc_pj_per_bit_hop == 0.7 and hw.energy.dram_pj_per_bit == 7.5
    assert load_hardware("wafer-64x64").tiles == 4096


def test_unit_conversions():
    hw = load_hardware("edge-8x8")
    assert hw.cycles_to_ms(1e6) == pytest.approx(1.0)
    assert hw.cycles_to_us(1e3) == pytest.approx(1.0)
    assert hw.dram_bytes_per_cycle == pytest.approx(64.0)


def test_hardware_file_round_trip(tmp_path):
    doc = load_hardware("edge-4x4").model_dump(mode="json", by_alias=True)
    doc["name"] = "mine"
    doc["mesh"] = [6, 5]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc))
    hw = load_hardware(str(path))
    assert hw.name == "mine" and hw.tiles == 30


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"mesh": [0, 4]}, "mesh"),
        ({"clock_ghz": -1}, "clock_ghz"),
        ({"extra_field": 1}, "extra_field"),
        ({"mesh": [8.0, 8]}, "mesh"),  # strict: a tile count is an integer
        ({"tile": {"macs_per_cycle": 1024, "vector_ops_per_cycle": 64, "sram_bytes": 10}}, "sram"),
    ],
)
def test_invalid_hardware(tmp_path, patch, message):
    doc = load_hardware("edge-8x8").model_dump(mode="json", by_alias=True)
    doc.update(patch)
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(HardwareError, match=message):
        load_hardware(str(path))


def test_unknown_preset():
    with pytest.raises(HardwareError, match="unknown hardware 'edge-9x9'"):
        load_hardware("edge-9x9")


def test_schema_has_fields():
    props = hardware_json_schema()["properties"]
    assert {"mesh", "tile", "noc", "dram", "energy"} <= set(props)
