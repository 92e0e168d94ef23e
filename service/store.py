"""Persistence: SQLAlchemy Core over SQLite (WAL) by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
    update,
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


jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("result", Text),
    Column("error", Text),
    Column("progress", Text),
    Column("artifacts", Text),
    Column("owner", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_jobs_created_at", "created_at"),
    Index("ix_jobs_state", "state"),
)

traces = Table(
    "traces",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("header", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("models", Text),  # JSON list of the model names its jobs use
    Column("jobs", Integer),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)

#: An API instance whose heartbeat is older than this is dead: its pending jobs are failed.
STALE_AFTER = timedelta(seconds=30)

hardware = Table(
    "hardware",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("doc", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Job states; the last three are final.
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")


#: Columns of a job summary (``list_jobs``; ``get_job`` adds parameters and result).
_SUMMARY = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.state,
    jobs.c.error,
    jobs.c.progress,
    jobs.c.created_at,
    jobs.c.updated_at,
)


def _summary(row: Any) -> dict[str, Any]:
    """A job summary from a row holding the :data:`_SUMMARY` columns."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "state": row["state"],
        "error": row["error"],
        "progress": None if row["progress"] is None else json.loads(row["progress"]),
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Stored graphs and jobs."""

    def __init__(self, url: str, recover: bool = True) -> None:
        self.url = url
        self.instance: str | None = None
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
        self._migrate()
        if recover:
            self.recover()

    def _migrate(self) -> None:
        """Add columns that databases written by earlier versions lack."""
        have = {c["name"] for c in inspect(self.engine).get_columns("jobs")}
        for index in jobs.indexes:  # databases from before the indexes existed
            index.create(self.engine, checkfirst=True)
        for column in ("progress", "artifacts", "owner"):
            if column not in have:
                with self.engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE jobs ADD COLUMN {column} TEXT"))
        have = {c["name"] for c in inspect(self.engine).get_columns("traces")}
        for column, kind in (("models", "TEXT"), ("jobs", "INTEGER")):
            if column not in have:
                with self.engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE traces ADD COLUMN {column} {kind}"))

    def register(self) -> str:
        """Record this API instance (its jobs carry its id); returns the id."""
        self.instance = str(uuid.uuid4())
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                insert(instances).values(
                    id=self.instance,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                )
            )
        return self.instance

    def heartbeat(self) -> None:
        """Tell other instances this one is alive."""
        if self.instance is None:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(instances)
                .where(instances.c.id == self.instance)
                .values(heartbeat_at=datetime.now(UTC))
            )

    def unregister(self) -> None:
        """Remove this instance (a clean stop; its pending jobs were failed already)."""
        if self.instance is None:
            return
        with self.engine.begin() as conn:
            conn.execute(delete(instances).where(instances.c.id == self.instance))

    def recover(self) -> int:
        """Fail pending jobs no live instance will finish; returns how many.

        A job is orphaned when it has no owner, or its owner is not this instance and has no
        heartbeat newer than :data:`STALE_AFTER`, or runs on this host under a process id that
        no longer exists (it stopped or crashed). Jobs of live sibling instances on the same
        database are left alone.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(instances.c.id, instances.c.host, instances.c.pid).where(
                    instances.c.heartbeat_at >= datetime.now(UTC) - STALE_AFTER
                )
            ).all()
        host = socket.gethostname()
        alive = [r[0] for r in rows if r[1] != host or _pid_alive(int(r[2]))]
        orphan = jobs.c.owner.is_(None) | jobs.c.owner.not_in(alive)
        if self.instance is not None:
            orphan = orphan & (jobs.c.owner != self.instance)
        with self.engine.begin() as conn:
            res = conn.execute(
                update(jobs)
                .where(jobs.c.state.in_(("queued", "running")))
                .where(orphan)
                .values(
                    state="failed",
                    error="interrupted: the service stopped while the job was pending",
                    updated_at=datetime.now(UTC),
                )
            )
            conn.execute(
                delete(instances).where(
                    instances.c.heartbeat_at < datetime.now(UTC) - 10 * STALE_AFTER
                )
            )
        return int(res.rowcount or 0)

    def add_trace(
        self,
        name: str,
        header: dict[str, Any],
        body: str,
        tid: str | None = None,
        models: list[str] | None = None,
        jobs: int | None = None,
    ) -> str:
        """Store a validated trace (JSON Lines text); returns its id.

        ``models`` (the model names its jobs use) and ``jobs`` (how many) are kept beside it,
        so that a replay can be checked without reading the trace. With ``tid`` given, a trace
        of that id already stored raises ``sqlalchemy.exc.IntegrityError`` (an atomic "only
        once", even across processes).
        """
        tid = tid or str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                insert(traces).values(
                    id=tid,
                    name=name,
                    header=json.dumps(header, allow_nan=False),
                    body=body,
                    created_at=datetime.now(UTC),
                    models=None if models is None else json.dumps(sorted(models)),
                    jobs=jobs,
                )
            )
        return tid

    def get_trace_models(self, tid: str) -> list[str] | None:
        """The model names a stored trace's jobs use (read from its text for old rows).

        ``None`` when there is no such trace.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(traces.c.models).where(traces.c.id == tid)).first()
        if row is None:
            return None
        if row[0] is not None:
            return list(json.loads(row[0]))
        got = self.get_trace(tid)
        if got is None:
            return None
        lines = got[1].splitlines()[1:]
        return sorted({str(json.loads(x).get("model")) for x in lines if x.strip()})

    def get_trace(self, tid: str) -> tuple[dict[str, Any], str] | None:
        """(header, JSON Lines text) of a stored trace, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(traces.c.header, traces.c.body).where(traces.c.id == tid)
            ).first()
        return None if row is None else (dict(json.loads(row[0])), str(row[1]))

    def get_trace_header(self, tid: str) -> dict[str, Any] | None:
        """The header of a stored trace (without reading its jobs), or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(traces.c.header).where(traces.c.id == tid)).first()
        return None if row is None else dict(json.loads(row[0]))

    def delete_trace(self, tid: str) -> bool:
        """Remove a trace; whether it existed."""
        with self.engine.begin() as conn:
            res = conn.execute(delete(traces).where(traces.c.id == tid))
        return bool(res.rowcount)

    def list_traces(self, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        """Ids, names and headers of stored traces, newest first (``limit`` from ``offset``)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(traces.c.id, traces.c.name, traces.c.header, traces.c.created_at)
                .order_by(traces.c.created_at.desc(), traces.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [
            {"id": r[0], "name": r[1], "header": json.loads(r[2]), "created_at": r[3].isoformat()}
            for r in rows
        ]

    def add_job(self, kind: str, params: dict[str, Any]) -> str:
        """Record a queued job; returns its id."""
        jid = str(uuid.uuid4())
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                insert(jobs).values(
                    id=jid,
                    kind=kind,
                    owner=self.instance,
                    state="queued",
                    params=json.dumps(params),
                    created_at=now,
                    updated_at=now,
                )
            )
        return jid

    def set_job(
        self,
        jid: str,
        state: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        artifacts: dict[str, Any] | None = None,
    ) -> None:
        """Move a job to ``state`` (a final state is never left)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == jid)
                .where(jobs.c.state.not_in(("done", "failed", "cancelled")))
                .values(
                    state=state,
                    result=None if result is None else json.dumps(result),
                    artifacts=None if artifacts is None else json.dumps(artifacts),
                    error=error,
                    updated_at=datetime.now(UTC),
                )
            )

    def get_artifacts(self, jid: str) -> dict[str, Any] | None:
        """A finished job's artefacts (dashboard data), or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs.c.artifacts).where(jobs.c.id == jid)).first()
        return None if row is None or row[0] is None else dict(json.loads(row[0]))

    def job_summary(self, jid: str) -> dict[str, Any] | None:
        """A job's summary (state, error, progress): no parameters or result are read."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*_SUMMARY).where(jobs.c.id == jid)).mappings().first()
        return None if row is None else _summary(row)

    def get_job(self, jid: str) -> dict[str, Any] | None:
        """A job's record (without artefacts), or ``None``."""
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(*_SUMMARY, jobs.c.params, jobs.c.result).where(jobs.c.id == jid)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return {
            **_summary(row),
            "params": json.loads(row["params"]),
            "result": None if row["result"] is None else json.loads(row["result"]),
        }

    def stored_bytes(self) -> int | None:
        """Bytes the database holds, read cheaply (no table scan); ``None`` when unknown.

        SQLite: pages in use (free pages left by deletes are reused, so deleting frees room);
        PostgreSQL: the total size of this store's tables.
        """
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                pages = conn.execute(text("PRAGMA page_count")).scalar_one()
                free = conn.execute(text("PRAGMA freelist_count")).scalar_one()
                size = conn.execute(text("PRAGMA page_size")).scalar_one()
                return (int(pages) - int(free)) * int(size)
            if self.engine.dialect.name == "postgresql":
                names = [t.name for t in metadata.sorted_tables]
                total = conn.execute(
                    text(
                        "SELECT SUM(pg_total_relation_size(t::regclass)) "
                        "FROM unnest(CAST(:n AS text[])) AS t"
                    ),
                    {"n": names},
                ).scalar_one()
                return int(total or 0)
        return None

    def job_states(self, jids: list[str]) -> dict[str, str]:
        """``{id: state}`` of the given jobs (missing ids are left out)."""
        if not jids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs.c.id, jobs.c.state).where(jobs.c.id.in_(jids))).all()
        return {str(r[0]): str(r[1]) for r in rows}

    def set_progress(self, jid: str, message: str, fraction: float | None) -> str | None:
        """Record a pending job's latest progress; returns the job's state (``None``: no job)."""
        doc = {"message": message, "fraction": fraction}
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == jid)
                .where(jobs.c.state.in_(("queued", "running")))
                .values(progress=json.dumps(doc), updated_at=datetime.now(UTC))
            )
            row = conn.execute(select(jobs.c.state).where(jobs.c.id == jid)).first()
        return None if row is None else str(row[0])

    def list_jobs(
        self, kind: str | None = None, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Job summaries (no params or result), newest first."""
        q = select(*_SUMMARY)
        if kind is not None:
            q = q.where(jobs.c.kind == kind)
        if state is not None:
            q = q.where(jobs.c.state == state)
        q = q.order_by(jobs.c.created_at.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [_summary(r) for r in rows]

    def add_graph(self, name: str, doc: dict[str, Any], text: str | None = None) -> str:
        """Store a validated graph document (or its JSON ``text``, when given); returns its id.

        Raises
        ------
        ValueError
            If the document holds NaN or an infinite number (JSON has neither).
        """
        gid = str(uuid.uuid4())
        body = text if text is not None else json.dumps(doc, allow_nan=False)
        with self.engine.begin() as conn:
            conn.execute(
                insert(graphs).values(id=gid, name=name, doc=body, created_at=datetime.now(UTC))
            )
        return gid

    def get_graph(self, gid: str) -> dict[str, Any] | None:
        """The stored document, or ``None``."""
        text = self.get_graph_text(gid)
        return None if text is None else dict(json.loads(text))

    def get_graph_text(self, gid: str) -> str | None:
        """The stored document as JSON text, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(graphs.c.doc).where(graphs.c.id == gid)).first()
        return None if row is None else str(row[0])

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

    def add_hardware(self, name: str, doc: dict[str, Any]) -> str:
        """Store a validated hardware document; returns its id."""
        hid = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(
                insert(hardware).values(
                    id=hid,
                    name=name,
                    doc=json.dumps(doc, allow_nan=False),
                    created_at=datetime.now(UTC),
                )
            )
        return hid

    def get_hardware(self, hid: str) -> dict[str, Any] | None:
        """A stored hardware document, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(hardware.c.doc).where(hardware.c.id == hid)).first()
        return None if row is None else dict(json.loads(row[0]))

    def list_hardware(
        self, limit: int = 1000, offset: int = 0, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Ids, names and documents of uploaded hardware, newest first.

        ``limit`` rows from ``offset``; only those called ``name`` when it is given.
        """
        query = select(hardware.c.id, hardware.c.name, hardware.c.doc, hardware.c.created_at)
        if name is not None:
            query = query.where(hardware.c.name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(
                query.order_by(hardware.c.created_at.desc(), hardware.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
        return [
            {"id": r[0], "name": r[1], "doc": json.loads(r[2]), "created_at": r[3].isoformat()}
            for r in rows
        ]

    def delete_hardware(self, hid: str) -> bool:
        """Remove uploaded hardware; whether it existed."""
        with self.engine.begin() as conn:
            res = conn.execute(delete(hardware).where(hardware.c.id == hid))
        return bool(res.rowcount)

    def delete_job(self, jid: str) -> bool:
        """Remove a finished job (done, failed or cancelled) with its result and artefacts.

        Returns whether a finished job of that id existed; a queued or running one is left.
        """
        with self.engine.begin() as conn:
            res = conn.execute(
                delete(jobs)
                .where(jobs.c.id == jid)
                .where(jobs.c.state.in_(("done", "failed", "cancelled")))
            )
        return bool(res.rowcount)

    def delete_graph(self, gid: str) -> bool:
        """Remove a graph; whether it existed."""
        with self.engine.begin() as conn:
            res = conn.execute(delete(graphs).where(graphs.c.id == gid))
        return bool(res.rowcount)
