"""The parsing behind bench/batch_gap.py's split of the server's CPU: which
thread is which part (py-spy dump) and which worker leads (/proc/locks).
The figures themselves are measured, never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.batch_gap import Variant, against_variants, flock_holder, thread_parts

DUMP = """Process 4242: gunicorn: worker [wsgi:app]
Python v3.11.7 (/usr/bin/python3.11)

Thread 4242 (idle): "MainThread"
    wait (threading.py:320)
Thread 4250 (active): "ThreadPoolExecutor-0_0"
    accept (api/submissions.py:205)
Thread 4251 (idle): "ThreadPoolExecutor-0_1"
Thread 4260 (active+gil): "ledger-committer"
Thread 4261 (idle): "intake-peer"
Thread 4262 (idle): "derived-watch"
Thread 4263 (idle): "intake-leader"
"""


def test_thread_parts_names_each_thread_by_its_python_name() -> None:
    assert thread_parts(DUMP) == {
        4242: "other",
        4250: "request threads",
        4251: "request threads",
        4260: "committer",
        4261: "intake peer (leader side of the hand-off)",
        4262: "derived-row watcher",
        4263: "other",
    }


def test_thread_parts_of_no_dump_is_empty() -> None:
    assert thread_parts("Error: Failed to find python version from target process\n") == {}


LOCKS = """1: POSIX  ADVISORY  WRITE 900 08:01:1111 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 00:2b:5678 0 EOF
3: FLOCK  ADVISORY  WRITE 4300 00:2b:56789 0 EOF
"""


def test_flock_holder_matches_the_inode_exactly() -> None:
    assert flock_holder(LOCKS, 5678) == 4242
    assert flock_holder(LOCKS, 56789) == 4300
    assert flock_holder(LOCKS, 1111) is None  # a POSIX lock, not the intake's flock
    assert flock_holder(LOCKS, 567) is None


def test_against_serves_another_checkout_as_shipped(tmp_path: Path) -> None:
    (tmp_path / "wsgi.py").write_text("")
    assert against_variants([f"old={tmp_path}"]) == {"old": Variant(root=tmp_path.resolve())}
    assert against_variants([]) == {}


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("old", "NAME=TREE"),
        ("=TREE", "NAME=TREE"),
        ("old=", "NAME=TREE"),
        ("main=TREE", "taken"),
        ("old=TREE,old=TREE", "taken"),
        ("old=NOWSGI", "no wsgi.py"),
    ],
)
def test_against_refuses_a_bad_spec(tmp_path: Path, spec: str, why: str) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "wsgi.py").write_text("")
    (tmp_path / "nowsgi").mkdir()
    specs = spec.replace("NOWSGI", str(tmp_path / "nowsgi")).replace("TREE", str(tmp_path / "tree")).split(",")
    with pytest.raises(ValueError, match=why):
        against_variants(specs)
