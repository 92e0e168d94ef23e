"""The storage quota: uploads and job submissions are refused once the database is full."""

from __future__ import annotations

from fastapi import Request

__all__ = ["QuotaExceeded", "check_quota"]


class QuotaExceeded(Exception):
    """The database holds ``ISOSCHED_MAX_STORED_BYTES`` already (HTTP 413, naming the limit)."""


def check_quota(request: Request, incoming: int) -> None:
    """Refuse to store ``incoming`` more bytes when the database would exceed its quota.

    Raises
    ------
    QuotaExceeded
        With the limit, what is stored, and what to delete.
    """
    limit: int = request.app.state.settings.max_stored_bytes
    if limit <= 0:
        return
    used = request.app.state.store.stored_bytes()
    if used is not None and used + incoming >= limit:
        raise QuotaExceeded(
            f"the service stores {used:,} bytes; {incoming:,} more would exceed its quota of "
            f"{limit:,} (ISOSCHED_MAX_STORED_BYTES): delete graphs (DELETE /v1/graphs/{{id}}), "
            "traces (DELETE /v1/traces/{id}), finished jobs' results (DELETE /v1/jobs/{id}) "
            "or uploaded hardware first"
        )
