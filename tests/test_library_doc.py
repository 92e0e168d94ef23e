"""docs/library.md runs as written: its Python blocks, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def test_the_library_page_runs_as_written(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "library.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 5
    monkeypatch.chdir(ROOT)  # the page's paths are relative to a checkout
    monkeypatch.setenv("ISOSCHED_CACHE_DIR", str(tmp_path))  # plans kept here, not in ~/.cache
    ns: dict[str, Any] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/library.md, block {i + 1}", "exec"), ns)
    assert ns["doc"]["schema"] == "isosched.replay/v2"
    assert ns["result"].found and ns["result"].reason == "found"
    assert set(ns["doc"]["policies"]) == {"isosched", "hasp", "prema"}
    assert len(ns["records"]) == len(ns["trace"].jobs)
    assert set(ns["curve"]["policies"]) == {"isosched", "hasp"}
    assert list(tmp_path.rglob("*")), "the plans were not kept in ISOSCHED_CACHE_DIR"
