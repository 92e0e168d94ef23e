"""Read hardware files and the shipped presets."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from isosched.errors import GraphError, HardwareError
from isosched.hw.model import Hardware
from isosched.io.bounded_json import decode_json
from isosched.io.graph_json import read_json

__all__ = ["hardware_json_schema", "load_hardware", "parse_hardware", "preset_names"]


def preset_names() -> list[str]:
    """Names of the shipped hardware presets."""
    folder = resources.files("isosched.hw").joinpath("presets")
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def parse_hardware(data: Any) -> Hardware:
    """Validate a decoded hardware document.

    Raises
    ------
    HardwareError
        With the first offending field and the reason (every field, when several are missing).
    """
    if not isinstance(data, dict):
        raise HardwareError("a hardware file must be a JSON object")
    schema = data.get("schema")
    if schema is not None and schema != "isosched.hardware/v1":
        raise HardwareError(f"unsupported hardware schema {schema!r}")
    try:
        # strict, as JSON: no "8.0" for a tile count, no "yes" for a boolean (lists stay arrays)
        return Hardware.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        errs = exc.errors()
        missing = [".".join(map(str, e["loc"])) for e in errs if e["type"] == "missing"]
        if len(missing) > 1:  # name every missing field at once, not one per attempt
            raise HardwareError(f"hardware: missing fields {', '.join(missing)}") from None
        err = errs[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        more = f" (and {len(errs) - 1} more errors)" if len(errs) > 1 else ""
        raise HardwareError(
            (f"hardware {loc}: {msg}" if loc else f"hardware: {msg}") + more
        ) from None


@lru_cache(maxsize=16)
def _preset(name: str) -> Hardware:
    text = resources.files("isosched.hw").joinpath("presets", f"{name}.json").read_text()
    return parse_hardware(decode_json(text, f"preset {name}", HardwareError))


def load_hardware(name_or_path: str | Path) -> Hardware:
    """A preset by name (``edge-8x8``, ...) or a hardware file by path.

    Raises
    ------
    HardwareError
        If the name is no preset and no readable, valid hardware file.
    """
    name = str(name_or_path)
    if name in preset_names():
        return _preset(name)
    path = Path(name)
    if not path.suffix or not path.exists():
        raise HardwareError(
            f"unknown hardware {name!r}: not a preset ({', '.join(preset_names())}) "
            "and not an existing file"
        )
    try:
        data = read_json(path, "hardware file")
    except GraphError as exc:
        raise HardwareError(str(exc)) from None
    return parse_hardware(data)


def hardware_json_schema() -> dict[str, Any]:
    """JSON Schema of the hardware file format."""
    return Hardware.model_json_schema(by_alias=True)
