"""The ``isosched`` command line: the root app and the error boundary."""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any, TextIO

import typer

from isosched.errors import IsoschedError

__all__ = ["app", "emit_json", "fail", "main"]

app = typer.Typer(
    name="isosched",
    help="Preemptive multi-DNN scheduling for tile-spatial accelerators (IsoSched).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # plain click help: no rich import at start-up (~0.3 s) and no <bool> beside flags
    rich_markup_mode=None,
)


def emit_json(doc: Any) -> None:
    """Print exactly one JSON document on standard output."""
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    """Exit with status 2 and a one-line reason on standard error."""
    sys.stderr.write(f"isosched: error: {message.splitlines()[0] if message else 'failed'}\n")
    raise SystemExit(2)


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Show a warning as the CLI's other messages are: one line, no source path."""
    (file or sys.stderr).write(f"isosched: warning: {' '.join(str(message).split())}\n")


def main() -> None:
    """Console-script entry point: run the app, turning input errors into exit status 2."""
    # Import the command modules for their registrations on ``app``.
    from isosched.cli import (  # noqa: F401
        hw,
        jobs,
        match,
        models,
        plan,
        replay,
        results,
        schema,
        serve,
        sweep,
        trace,
    )

    warnings.showwarning = _one_line_warning
    try:
        # not standalone: click hands usage errors to us instead of printing a panel
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # bad option value, unknown command, missing argument
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            sys.stderr.write(ctx.get_help() + "\n")  # `isosched`, `isosched hw`: the help
            raise SystemExit(2) from None
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        fail(" ".join(message.split()) + where)
    except typer.Abort:
        fail("aborted")
    except IsoschedError as exc:
        fail(str(exc))
    except OSError as exc:
        if exc.filename is not None and exc.strerror:  # a file: name it, as the readers do
            fail(f"cannot use {str(exc.filename)!r}: {exc.strerror}")
        fail(f"{type(exc).__name__}: {exc}")
    except (MemoryError, RecursionError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    raise SystemExit(code if isinstance(code, int) else 0)
