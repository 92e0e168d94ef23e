"""Write the model zoo: ``python -m isosched.zoo [DIR]`` (default ``models/``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from isosched.zoo.registry import write_zoo


def main(argv: list[str] | None = None) -> int:
    """Write every zoo model and ``MANIFEST.json`` into a directory; one summary line each."""
    parser = argparse.ArgumentParser(
        prog="python -m isosched.zoo",
        description="Write <name>.json for every zoo model and MANIFEST.json into DIR.",
    )
    parser.add_argument("directory", nargs="?", default="models", metavar="DIR")
    args = parser.parse_args(argv)
    directory = Path(args.directory)
    manifest = write_zoo(directory)
    for rec in manifest.values():
        print(
            f"{rec['name']:<14} {rec['layers']:>4} layers {rec['edges']:>4} edges "
            f"{rec['macs'] / 1e9:>9.3f} GMACs {rec['params'] / 1e6:>9.2f} M params",
            file=sys.stderr,
        )
    print(f"wrote {len(manifest)} models and MANIFEST.json to {directory}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
