"""``written_whole``: whole files from concurrent writers, with the usual permissions."""

from __future__ import annotations

import threading

import pytest

from isosched.io.files import written_whole


def test_concurrent_writers_of_one_file_each_leave_it_whole(tmp_path):
    path = tmp_path / "out.json"
    start = threading.Barrier(8)
    failed: list[BaseException] = []

    def write(n: int) -> None:
        start.wait()
        try:
            for _ in range(20):
                with written_whole(path, durable=n % 2 == 0) as part, part.open("w") as fh:
                    fh.write(str(n) * 10_000)
        except BaseException as exc:  # a writer whose temporary file another one renamed
            failed.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == []  # every writer finished: none shared a temporary file
    text = path.read_text()
    assert len(text) == 10_000 and len(set(text)) == 1  # one writer's file, whole
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_a_written_file_has_the_permissions_of_a_plainly_created_one(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    path = tmp_path / "whole"
    with written_whole(path) as part:
        part.write_text("x")
    assert path.stat().st_mode == plain.stat().st_mode


def test_a_failed_durable_write_leaves_nothing(tmp_path):
    path = tmp_path / "plan.pkl"
    with pytest.raises(OSError), written_whole(path, durable=True) as part:
        part.write_bytes(b"half")
        raise OSError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_private_file_is_its_owners_only_however_it_is_opened(tmp_path):
    path = tmp_path / "plan.pkl"
    for _ in range(2):  # and again over the first
        with written_whole(path, durable=True, mode=0o600) as part, part.open("wb") as fh:
            fh.write(b"secret")
        assert path.stat().st_mode & 0o777 == 0o600 and path.read_bytes() == b"secret"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
