"""Traces as text: parse uploaded JSON Lines with the library's validation."""

from __future__ import annotations

from isosched.io.trace_jsonl import parse_trace_lines
from isosched.trace import Trace

__all__ = ["parse_trace_text"]


def parse_trace_text(text: str) -> Trace:
    """Validate a JSON Lines trace given as text (same checks as ``isosched replay``)."""
    return parse_trace_lines(text.splitlines())
