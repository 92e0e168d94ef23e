"""The simulator's hot modules compiled ahead of time with mypyc: the same code, faster.

The engine and the tile-spatial and LTS policies without numba kernels are plain typed Python;
mypyc (part of mypy, on PyPI) compiles them into C extensions that run the same operations in
the same order — IEEE doubles, the same sums, the same dict orders — so every replay is
byte-identical compiled or not (``tests/test_native.py`` compares them). ``make test`` and
``make run`` build them (``python -m isosched.native_build``, which needs mypy and a C
compiler); without a build everything runs as pure Python.

The pure-Python sources stay the reference and are used instead of a build when

* ``ISOSCHED_PURE_PYTHON=1`` is set, or
* any compiled module's source differs from the one it was built from (an edit since the build,
  recorded in ``_native.json``): then every module of the group runs from source, since compiled
  modules call each other directly and must not mix with an edited one.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = [
    "GROUP",
    "NATIVE_MODULES",
    "PURE_ENV",
    "build",
    "compiled_modules",
    "install_guard",
    "source_of",
]

#: Modules compiled together (they call each other natively). A numba kernel cannot be compiled
#: by mypyc (a function cannot be both): Planaria's and MoCA's live in
#: ``isosched.sim.policies.podalloc``, which stays interpreted. ``jobplan`` stays interpreted too:
#: its frozen dataclasses travel by pickle (plan books sent to Ray workers), which a compiled
#: frozen dataclass does not survive.
NATIVE_MODULES = (
    "isosched.sim.engine",
    "isosched.sim.occupancy",
    "isosched.sim.policies.common",
    "isosched.sim.policies.spatial",
    "isosched.sim.policies.hasp",
    "isosched.sim.policies.isosched",
    "isosched.sim.policies.prema",
    "isosched.sim.policies.cdmsa",
    "isosched.sim.policies.fcfs",
    "isosched.sim.policies.planaria",
    "isosched.sim.policies.moca",
)

#: The shared library of the group (``isosched/sim/_native__mypyc*.so``).
GROUP = "isosched.sim._native"

#: Set to 1 to run the pure-Python sources even when a build exists.
PURE_ENV = "ISOSCHED_PURE_PYTHON"

_PACKAGE = Path(__file__).resolve().parent
_RECORD = _PACKAGE / "_native.json"


def source_of(module: str) -> Path:
    """The ``.py`` file of a module of the package."""
    return _PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _built_from_current_sources() -> bool:
    """Whether a whole build exists, built from the current sources of every compiled module.

    A group with a file missing would mix compiled and interpreted copies of a class.
    """
    try:
        record = json.loads(_RECORD.read_text(encoding="utf-8"))
        sources = record["sources"]
        built = {Path(f) for f in record["files"]}
        if not all((_PACKAGE.parent / f).exists() for f in built):
            return False
        return all(sources.get(m) == _digest(source_of(m)) for m in NATIVE_MODULES)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


class _SourceFinder:
    """Loads the group's modules from their ``.py`` files, never from a compiled extension."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in NATIVE_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def install_guard() -> bool:
    """Run the pure-Python sources unless a current build exists and is wanted.

    Called by ``isosched/sim/__init__.py`` before any of the modules is imported. Returns whether
    the compiled modules will be used.
    """
    pure = os.environ.get(PURE_ENV, "") not in ("", "0")
    if not pure and _built_from_current_sources():
        return True
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())
    return False


def compiled_modules() -> list[str]:
    """The group's modules that are loaded from compiled extensions in this process."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    out = []
    for name in NATIVE_MODULES:
        mod = sys.modules.get(name)
        if mod is None:
            mod = importlib.import_module(name)
        if str(getattr(mod, "__file__", "")).endswith(suffixes):
            out.append(name)
    return out


_SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify
paths, group = sys.argv[1:-1], sys.argv[-1]
setup(
    name="isosched-native",
    ext_modules=mypycify(["--ignore-missing-imports", *paths], group_name=group, opt_level="3"),
    script_args=["build_ext", "--inplace"],
)
"""


def build(quiet: bool = True) -> list[Path]:
    """Compile :data:`NATIVE_MODULES` in place with mypyc and record their sources.

    Runs in a scratch directory that links to the package (mypyc's build reads no project
    file there). Returns the extension files written.

    Raises
    ------
    RuntimeError
        If mypyc is not installed or the build fails (the message says why; the package
        then keeps running as pure Python).
    """
    import subprocess
    import tempfile

    if importlib.util.find_spec("mypyc") is None:
        raise RuntimeError("mypyc is not installed (pip install mypy); running pure Python")
    clean()
    with tempfile.TemporaryDirectory(prefix="isosched-native-") as tmp:
        os.symlink(_PACKAGE, Path(tmp) / "isosched")
        paths = [source_of(m).relative_to(_PACKAGE.parent).as_posix() for m in NATIVE_MODULES]
        done = subprocess.run(
            [sys.executable, "-c", _SETUP, *paths, GROUP],
            cwd=tmp,
            capture_output=quiet,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout or "").strip().splitlines()[-5:]
            raise RuntimeError("mypyc build failed; running pure Python:\n" + "\n".join(tail))
    written = _extensions()
    if len(written) != len(NATIVE_MODULES) + 1:
        raise RuntimeError(f"mypyc build wrote {len(written)} extensions; running pure Python")
    record = {
        "sources": {m: _digest(source_of(m)) for m in NATIVE_MODULES},
        "files": [p.relative_to(_PACKAGE.parent).as_posix() for p in written],
    }
    _RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return written


def _extensions() -> list[Path]:
    """Compiled files under ``isosched/sim`` (the group's, and any left by an older build)."""
    root = _PACKAGE / "sim"
    return sorted(
        {
            p
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
            for p in root.rglob("*" + suffix)
            if "__pycache__" not in p.parts
        }
    )


def clean() -> None:
    """Remove the compiled modules and the record (back to pure Python)."""
    for p in _extensions():
        p.unlink()
    _RECORD.unlink(missing_ok=True)
