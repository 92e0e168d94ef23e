"""Read and write ``isosched.trace/v1`` JSON Lines traces and scenario files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from isosched.errors import GraphError
from isosched.io.bounded_json import decode_json, no_json_constant
from isosched.io.graph_json import read_json
from isosched.trace.generate import TRACE_SCHEMA, Job, Trace
from isosched.trace.scenario import Scenario, ScenarioError, parse_scenario

__all__ = [
    "TraceError",
    "parse_trace_lines",
    "parse_trace_text",
    "read_scenario",
    "read_trace",
    "write_trace",
]

#: Largest trace accepted, in job lines.
MAX_TRACE_JOBS = 5_000_000

#: Latest release and deadline a trace may give, microseconds (ten days).
MAX_TRACE_US = 864_000_000_000

#: Largest priority of a job; priorities are 0 .. this, as in scenarios (PREMA's tokens grow
#: with the priority, so a negative one never reached its threshold and PREMA failed).
MAX_PRIORITY = 1_000_000

#: Longest job id, stream or model name, characters.
MAX_NAME_CHARS = 512


class TraceError(ScenarioError):
    """A trace file is malformed: bad header, bad line, lines out of order, unknown reference."""


def read_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    try:
        return parse_scenario(read_json(path, "scenario file"))
    except GraphError as exc:
        raise ScenarioError(str(exc)) from None


def write_trace(trace: Trace, path: str | Path) -> None:
    """Write the header line, then one line per job."""
    with Path(path).open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(trace.header, separators=(",", ":")) + "\n")
        for job in trace.jobs:
            fh.write(json.dumps(job.to_doc(), separators=(",", ":")) + "\n")


_FIELDS: dict[str, type] = {
    "job": str,
    "stream": str,
    "model": str,
    "release_us": int,
    "deadline_us": int,
    "priority": int,
    "critical": bool,
}


def _job(doc: Any, lineno: int) -> Job:
    if not isinstance(doc, dict):
        raise TraceError(f"trace line {lineno}: a job must be a JSON object")
    for name, kind in _FIELDS.items():
        value = doc.get(name)
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise TraceError(f"trace line {lineno}: field {name!r} must be {kind.__name__}")
    dep = doc.get("depends_on")
    if dep is not None and not isinstance(dep, str):
        raise TraceError(f"trace line {lineno}: 'depends_on' must be a job id")
    for name in ("job", "stream", "model"):
        if not 0 < len(doc[name]) <= MAX_NAME_CHARS:
            raise TraceError(
                f"trace line {lineno}: {name!r} must have 1..{MAX_NAME_CHARS} characters"
            )
    if not 0 <= doc["release_us"] <= doc["deadline_us"] <= MAX_TRACE_US:
        raise TraceError(
            f"trace line {lineno}: need 0 <= release_us <= deadline_us <= {MAX_TRACE_US}"
        )
    if not 0 <= doc["priority"] <= MAX_PRIORITY:
        raise TraceError(f"trace line {lineno}: priority must be in 0..{MAX_PRIORITY:,}")
    return Job(
        doc["job"],
        doc["stream"],
        doc["model"],
        doc["release_us"],
        doc["deadline_us"],
        doc["priority"],
        doc["critical"],
        dep,
    )


def _check_header(doc: dict[str, Any]) -> None:
    """The header fields the replay reads: ``time_unit`` (``us``) and ``horizon_us``."""
    unit = doc.get("time_unit", "us")
    if unit != "us":
        raise TraceError(f"trace header: time_unit must be 'us' (microseconds), got {unit!r}")
    h = doc.get("horizon_us")
    if h is not None and (
        not isinstance(h, int | float) or isinstance(h, bool) or not 1 <= h <= MAX_TRACE_US
    ):
        raise TraceError(f"trace header: horizon_us must be a number in 1..{MAX_TRACE_US}")


def _job_line(line: str, lineno: int) -> Any:
    """Decode a job line (only its known fields are kept, and those are checked by type)."""
    try:
        return json.loads(line, parse_constant=no_json_constant)
    except json.JSONDecodeError as exc:
        raise TraceError(f"trace line {lineno} is not JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise TraceError(f"trace line {lineno} is not UTF-8 text") from None
    except RecursionError:
        raise TraceError(f"trace line {lineno} is nested too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits, NaN, Infinity
        raise TraceError(f"trace line {lineno} is not valid JSON: {exc}") from None


def read_trace(path: str | Path) -> Trace:
    """Read and validate a trace file (see :func:`parse_trace_lines`).

    Raises
    ------
    TraceError
        When the file cannot be read, or as :func:`parse_trace_lines`.
    """
    p = Path(path)
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise TraceError(f"cannot read trace {str(p)!r}: {exc.strerror}") from None
    with fh:
        return parse_trace_lines(_utf8_lines(fh, p))


def _utf8_lines(fh: Iterable[bytes], path: Path) -> Iterator[str]:
    """The file's lines as text; a line that is not UTF-8 is named with its number."""
    for lineno, raw in enumerate(fh, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceError(f"{path}: trace line {lineno} is not UTF-8 text") from None


def parse_trace_text(text: str, max_jobs: int = MAX_TRACE_JOBS) -> Trace:
    """Validate a trace given as JSON Lines text (as :func:`parse_trace_lines`)."""
    return parse_trace_lines(text.splitlines(), max_jobs)


def parse_trace_lines(lines: Iterable[str], max_jobs: int = MAX_TRACE_JOBS) -> Trace:
    """Validate a trace given as its lines (JSON Lines text, header first).

    Raises
    ------
    TraceError
        On a missing or foreign header, a malformed line, releases out of order, duplicate job
        ids, a ``depends_on`` naming no earlier job or more than ``max_jobs`` jobs; the message
        gives the line number.
    """
    jobs: list[Job] = []
    seen: set[str] = set()
    header: dict[str, Any] | None = None
    last = -1
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if header is None:  # kept and echoed: every limit of bounded JSON applies
            doc = decode_json(line, f"trace line {lineno}", TraceError)
            if not isinstance(doc, dict) or doc.get("schema") != TRACE_SCHEMA:
                raise TraceError(f"trace line 1 must be a header with schema {TRACE_SCHEMA!r}")
            _check_header(doc)
            header = doc
            continue
        job = _job(_job_line(line, lineno), lineno)
        if job.release_us < last:
            raise TraceError(
                f"trace line {lineno}: release_us {job.release_us} goes back in time "
                f"(previous {last}); lines must be in release order"
            )
        if job.job in seen:
            raise TraceError(f"trace line {lineno}: duplicate job id {job.job!r}")
        if job.depends_on is not None and job.depends_on not in seen:
            raise TraceError(
                f"trace line {lineno}: depends_on {job.depends_on!r} names no earlier job"
            )
        if len(jobs) >= max_jobs:
            raise TraceError(f"trace has more than {max_jobs:,} jobs (the limit)")
        seen.add(job.job)
        last = job.release_us
        jobs.append(job)
    if header is None:
        raise TraceError("trace is empty: expected a header line")
    return Trace(header, tuple(jobs))
