"""Ray plumbing: join or start a cluster, and run sweep points one per Ray task.

Ray is optional (``pip install -e '.[ray]'``); nothing imports this module unless Ray is asked
for (``isosched sweep --ray``, ``ISOSCHED_RAY_ADDRESS``). Sweep points are deterministic
functions of (scenario, hardware, policy, scale, seed), so results do not depend on where they
run; the profiles the driver computed are shipped to the workers once through the object store,
so no worker plans a model again.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

from isosched.errors import IsoschedError
from isosched.sim.sweep import Point, PointMap, export_books, import_books

__all__ = ["INSTALL_HINT", "connect", "ray_map", "ray_module"]

INSTALL_HINT = (
    "Ray is not installed: pip install -e '.[ray]' (or run without --ray / "
    "ISOSCHED_RAY_ADDRESS to use the local process pool)"
)


def ray_module() -> Any:
    """The ``ray`` module.

    Raises
    ------
    IsoschedError
        With the install hint, when Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise IsoschedError(INSTALL_HINT) from None
    return ray


def connect(address: str, workers: int | None = None) -> None:
    """Join the Ray cluster at ``address``, or start one on this machine for ``local``.

    ``workers`` caps the CPUs a local cluster uses (one task per CPU). Inside a Ray worker the
    existing connection is kept.
    """
    ray = ray_module()
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address == "local":  # always a new cluster, never one `ray start` left behind
        ray.init(address="local", num_cpus=workers, **kwargs)
        return
    if address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except (ValueError, ConnectionError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IsoschedError(f"cannot join the Ray cluster at {address!r}: {first}") from None


#: Seconds to wait for a cluster's address to accept a connection before Ray is asked to join
#: it (Ray itself retries an address that does not answer for minutes).
CONNECT_TIMEOUT_S = 10.0


def _check_reachable(address: str) -> None:
    """Refuse an address that is not ``[ray://]host:port`` or where nothing listens.

    Raises
    ------
    IsoschedError
        Naming the address and what is wrong with it.
    """
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise IsoschedError(
            f"Ray address {address!r} is not host:port, ray://host:port, 'local' or 'auto'"
        )
    try:
        with socket.create_connection(
            (host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S
        ) as conn:
            grpc = _speaks_grpc(conn)
    except OSError as exc:
        raise IsoschedError(
            f"no Ray cluster answers at {address!r} ({exc.strerror or exc}); start one with "
            "`ray start --head`, or use --ray local"
        ) from None
    if not grpc:  # Ray would retry such an address for minutes
        raise IsoschedError(
            f"something listens at {address!r}, but not a Ray cluster (it does not speak "
            "gRPC); check the port (`ray start --head` prints the address)"
        )


#: An HTTP/2 client's connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
_H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _speaks_grpc(conn: socket.socket) -> bool:
    """Whether the server behind ``conn`` answers as HTTP/2 does: a SETTINGS frame first.

    Ray's cluster address (its GCS) and its client server are gRPC servers, which are HTTP/2.
    """
    conn.sendall(_H2_HELLO)
    head = b""
    while len(head) < 9:
        chunk = conn.recv(9 - len(head))
        if not chunk:
            return False
        head += chunk
    return head[3] == 0x04  # the frame type byte


def _run_point(profiles: Any, fn: Callable[[Point], dict[str, Any]], task: Point) -> Any:
    import_books(profiles)
    return fn(task)


def ray_map(address: str = "local", workers: int | None = None) -> PointMap:
    """A sweep executor running one point per Ray task (results yielded in order)."""

    def run(fn: Callable[[Point], dict[str, Any]], tasks: list[Point]) -> Iterator[dict[str, Any]]:
        connect(address, workers)
        ray = ray_module()
        profiles = ray.put(export_books())
        remote = ray.remote(num_cpus=1)(_run_point)
        refs = [remote.remote(profiles, fn, t) for t in tasks]
        done = 0
        try:
            for ref in refs:
                yield ray.get(ref)
                done += 1
        finally:
            # stopped early (cancelled job, error): drop the points not yet collected. Only
            # unfinished ones: cancelling a finished task can abort the Ray driver.
            if done < len(refs):
                rest = refs[done:]
                _ready, unfinished = ray.wait(rest, num_returns=len(rest), timeout=0)
                for ref in unfinished:
                    ray.cancel(ref)

    return run
