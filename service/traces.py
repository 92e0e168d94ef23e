"""Traces as text: parse uploaded JSON Lines with the library's validation."""

from __future__ import annotations

import tempfile
from pathlib import Path

from isosched.io.trace_jsonl import read_trace
from isosched.trace import Trace

__all__ = ["parse_trace_text"]


def parse_trace_text(text: str) -> Trace:
    """Validate a JSON Lines trace given as text (same checks as ``isosched replay``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.jsonl"  # a name we choose: clients never name paths
        path.write_text(text, encoding="utf-8")
        return read_trace(path)
