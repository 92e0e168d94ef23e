"""``python -m isosched.native_build [build|clean|status]``: compile the simulator with mypyc.

See :mod:`isosched.native`. ``build`` (the default) compiles in place and exits 1, saying why, when
it cannot (no mypy, no C compiler): the package then runs as pure Python.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from isosched.native import NATIVE_MODULES, build, clean, compiled_modules

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Build, clean or report the compiled modules; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    what = args[0] if args else "build"
    if what == "build":
        try:
            files = build()
        except RuntimeError as exc:
            print(f"isosched.native_build: {exc}", file=sys.stderr)
            return 1
        print(f"isosched.native_build: compiled {len(NATIVE_MODULES)} modules ({len(files)} files)")
        return 0
    if what == "clean":
        clean()
        return 0
    if what == "status":
        mods = compiled_modules()
        state = "compiled" if mods else "pure Python"
        print(
            f"isosched.native_build: {state} ({len(mods)}/{len(NATIVE_MODULES)} modules compiled)"
        )
        return 0
    print("usage: python -m isosched.native_build [build|clean|status]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
