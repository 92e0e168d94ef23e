"""``isosched schema graph|hardware|tilegraph``: print a file format's JSON Schema."""

from __future__ import annotations

import typer

from isosched.cli.app import app, emit_json

schema_app = typer.Typer(help="Print the JSON Schema of a file format.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")


@schema_app.command("graph")
def schema_graph() -> None:
    """JSON Schema of graph files (isosched.graph/v1)."""
    from isosched.io.graph_json import graph_json_schema

    emit_json(graph_json_schema())


@schema_app.command("hardware")
def schema_hardware() -> None:
    """JSON Schema of hardware files (isosched.hardware/v1)."""
    from isosched.io.hardware_json import hardware_json_schema

    emit_json(hardware_json_schema())


@schema_app.command("tilegraph")
def schema_tilegraph() -> None:
    """JSON Schema of tile graph files (isosched.tilegraph/v1), the matcher's pattern."""
    from isosched.tilegraph import tilegraph_json_schema

    emit_json(tilegraph_json_schema())
