"""Persistence: SQLAlchemy Core over SQLite (WAL) by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    insert,
    select,
)

__all__ = ["Store"]

metadata = MetaData()

graphs = Table(
    "graphs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("doc", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class Store:
    """Stored graphs (the other resources arrive with their routes)."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url)
        if url.startswith("sqlite"):

            @event.listens_for(self.engine, "connect")
            def _wal(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

        metadata.create_all(self.engine)

    def add_graph(self, name: str, doc: dict[str, Any]) -> str:
        """Store a validated graph document; returns its id."""
        gid = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                insert(graphs).values(
                    id=gid, name=name, doc=json.dumps(doc), created_at=datetime.now(UTC)
                )
            )
        return gid

    def get_graph(self, gid: str) -> dict[str, Any] | None:
        """The stored document, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(graphs.c.doc).where(graphs.c.id == gid)).first()
        return None if row is None else dict(json.loads(row[0]))

    def list_graphs(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Ids, names and creation times, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(graphs.c.id, graphs.c.name, graphs.c.created_at)
                .order_by(graphs.c.created_at.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [{"id": r[0], "name": r[1], "created_at": r[2].isoformat()} for r in rows]

    def delete_graph(self, gid: str) -> bool:
        """Remove a graph; whether it existed."""
        with self.engine.begin() as conn:
            res = conn.execute(delete(graphs).where(graphs.c.id == gid))
        return bool(res.rowcount)
