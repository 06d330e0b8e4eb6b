"""The tile directory a static web server serves (ledger/tile_publisher.py,
ledger/tile_directory.py): what each round writes, that every file is what
the app serves, that nothing unverified is published, and that a writer
killed at any step leaves a directory whose checkpoint has all its tiles,
which the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from keys.note import Signer, Verifier, sign_note
from ledger.log import Log
from ledger.tile_directory import CHECKPOINT, TMP, TileDirectory, TileDirectoryError
from ledger.tile_publisher import EMPTY, Head, TilesWatch, completed, new_tiles, publish, verify_directory
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint, open_checkpoint
from ledger.tlog.tile import Tile, parse_tile_path
from tests.reference import ListReader, tiles_for_size
from tests.server import ROOT

ORIGIN = "tiles.example/log"
LOG_KEY = Signer.from_seed(ORIGIN, bytes(range(32)))
WITNESS = Signer.from_seed("witness.example/w1", bytes(range(1, 33)))


class ListSource:
    """A :class:`ledger.tile_publisher.TileSource` over the reference log, in memory."""

    def __init__(self, signer: Signer = LOG_KEY) -> None:
        self.ref = ListReader()
        self.signer = signer
        self.roots = {0: merkle.EMPTY_ROOT}
        self.witnessed = False

    def add(self, count: int, tag: bytes = b"e") -> None:
        for _ in range(count):
            self.ref.add(b"%s%d" % (tag, len(self.ref.entries)))
        self.roots[self.size] = merkle.tree_hash(self.size, self.ref)

    @property
    def size(self) -> int:
        return len(self.ref.entries)

    def latest(self) -> Head:
        root = self.roots[self.size]
        body = Checkpoint(self.signer.name, self.size, root).body()
        signers = (self.signer, WITNESS) if self.witnessed else (self.signer,)
        return Head(self.size, root, sign_note(body, *signers))

    def root_at(self, size: int) -> bytes | None:
        return self.roots.get(size)

    def prefix(self, size: int) -> ListSource:
        """The same log as it was at ``size``, which it must have signed."""
        out = ListSource(self.signer)
        out.ref.entries = self.ref.entries[:size]
        out.ref.hashes = self.ref.hashes[: merkle.stored_hash_count(size)]
        out.roots = {k: v for k, v in self.roots.items() if k <= size}
        assert size in out.roots
        return out

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        return [self.ref.tile_data(t) for t in tiles]


def files(root: Path) -> dict[str, bytes]:
    """The served files of a directory, by path (the lock and temporary files excluded)."""
    out = {CHECKPOINT: (root / CHECKPOINT).read_bytes()} if (root / CHECKPOINT).exists() else {}
    for p in (root / "tile").rglob("*") if (root / "tile").exists() else []:
        if p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def check_directory(root: Path, ref: ListReader | None = None, verifier: Verifier = LOG_KEY.verifier) -> Head:
    """Raise unless the directory's checkpoint verifies with every tile it needs,
    re-checked from scratch; with ``ref``, every file holds the reference bytes."""
    d = TileDirectory(root)
    note = d.read_checkpoint()
    if note is None:
        return EMPTY
    cp = open_checkpoint(note, verifier).checkpoint
    head = Head(cp.size, cp.root, note)
    verify_directory(d, EMPTY, head)
    for t in tiles_for_size(head.size):
        data = d.read_tile(t)
        assert data is not None, f"{t.path()} is missing below the checkpoint of size {head.size}"
        if ref is not None:
            assert data == ref.tile_data(t), t.path()
    return head


def assert_partials_collected(root: Path) -> None:
    """After a completed round, no partial tile outlives its full tile."""
    d = TileDirectory(root)
    for path in files(root):
        if path != CHECKPOINT:
            t = parse_tile_path(path)
            assert not t.is_partial or d.read_tile(Tile(t.level, t.n)) is None, f"{path} outlived its full tile"


def run(source: ListSource, root: Path) -> None:
    d = TileDirectory(root)
    try:
        publish(source, d, source.signer.verifier)
    finally:
        d.unlock()


# The plan ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes",
    [[(old, new) for new in range(300) for old in range(new + 1)]]
    + [[(old, new) for new in (65535, 65536, 65537, 70000) for old in (0, 255, 256, 65535, 65536) if old <= new]],
    ids=["all pairs to 300", "around 65536"],
)
def test_new_tiles_are_what_the_tree_gained(sizes: list[tuple[int, int]]) -> None:
    for old, new in sizes:
        had = set(tiles_for_size(old))
        assert new_tiles(old, new) == [t for t in tiles_for_size(new) if t not in had], (old, new)
        for t in completed(old, new):
            assert not t.is_partial
            assert t in tiles_for_size(new)
            assert any(p.level == t.level and p.n == t.n and p.is_partial for p in had), (old, new, t)


# Rounds against a reference log ----------------------------------------------------------------


def test_directory_follows_the_log(tmp_path: Path) -> None:
    """Every size at which a tile, a level or a bundle begins or ends, and a
    catch-up of several levels in one round."""
    src = ListSource()
    run(src, tmp_path)
    assert check_directory(tmp_path, src.ref) == Head(0, merkle.EMPTY_ROOT, src.latest().note)
    for grow in (1, 1, 253, 1, 1, 254, 1, 257, 512, 64_000, 255, 1, 4_463):
        src.add(grow)
        before = files(tmp_path)
        run(src, tmp_path)
        after = files(tmp_path)
        head = check_directory(tmp_path)
        assert_partials_collected(tmp_path)
        assert (head.size, head.note) == (src.size, src.latest().note)
        for path in after.keys() - before.keys() - {CHECKPOINT}:
            assert after[path] == src.ref.tile_data(parse_tile_path(path)), path
        # Files are added, never changed; only the checkpoint and the partials of now-full tiles go.
        for path, data in before.items():
            if path in after and path != CHECKPOINT:
                assert after[path] == data, path
            elif path != CHECKPOINT:
                t = parse_tile_path(path)
                assert t.is_partial, path
                assert Tile(t.level, t.n) in completed(src.size - grow, src.size), path
    assert src.size == 70_000
    assert check_directory(tmp_path, src.ref).size == 70_000


def test_new_cosignatures_replace_only_the_checkpoint(tmp_path: Path) -> None:
    src = ListSource()
    src.add(300)
    run(src, tmp_path)
    before = files(tmp_path)
    src.witnessed = True
    run(src, tmp_path)
    after = files(tmp_path)
    assert after[CHECKPOINT] == src.latest().note != before[CHECKPOINT]
    assert {p: d for p, d in after.items() if p != CHECKPOINT} == {p: d for p, d in before.items() if p != CHECKPOINT}


def test_refuses_another_logs_directory(tmp_path: Path) -> None:
    other = ListSource(Signer.from_seed("other.example/log", bytes(32)))
    other.add(5)
    run(other, tmp_path)
    before = files(tmp_path)
    src = ListSource()
    src.add(9)
    with pytest.raises(TileDirectoryError, match="not this log's checkpoint"):
        run(src, tmp_path)
    assert files(tmp_path) == before


def test_refuses_a_directory_ahead_of_the_log(tmp_path: Path) -> None:
    """A database restored from an older backup: the directory stays where it was."""
    src = ListSource()
    src.add(600)
    run(src, tmp_path)
    before = files(tmp_path)
    restored = ListSource()
    restored.add(500)
    with pytest.raises(TileDirectoryError, match="not a tree this log signed"):
        run(restored, tmp_path)
    restored.roots[600] = src.roots[600]  # even if it claims to have signed that size
    with pytest.raises(TileDirectoryError, match="ahead of"):
        run(restored, tmp_path)
    assert files(tmp_path) == before


def test_refuses_a_fork(tmp_path: Path) -> None:
    """A log whose new tree does not extend the published one is caught by
    the consistency proof from the directory's own tiles."""
    src = ListSource()
    src.add(300)
    run(src, tmp_path)
    before = files(tmp_path)
    fork = ListSource()
    fork.add(300, b"forked")
    fork.add(400)
    fork.roots[300] = src.roots[300]  # the fork lies about the published size
    with pytest.raises(TileDirectoryError, match="not consistent"):
        run(fork, tmp_path)
    assert (tmp_path / CHECKPOINT).read_bytes() == before[CHECKPOINT]


class LyingSource(ListSource):
    """Flips one bit of one tile it serves."""

    target: Tile

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        out = super().read_tiles(tiles)
        return [bytes([d[0] ^ 1]) + d[1:] if t == self.target else d for t, d in zip(tiles, out, strict=True)]


@pytest.mark.parametrize("path", ["tile/entries/000", "tile/entries/001.p/44", "tile/0/000", "tile/0/001.p/44"])
def test_a_tile_that_does_not_verify_is_never_published(tmp_path: Path, path: str) -> None:
    src = LyingSource()
    src.add(3)
    src.target = Tile(0, 10**6)  # none of its tiles
    run(src, tmp_path)
    before = files(tmp_path)
    src.add(297)
    src.target = parse_tile_path(path)
    with pytest.raises(TileDirectoryError):
        run(src, tmp_path)
    assert (tmp_path / CHECKPOINT).read_bytes() == before[CHECKPOINT]
    check_directory(tmp_path)
    # The bad file stays, unpublished, and is never replaced: an honest
    # round names it until the operator removes it.
    honest = ListSource()
    honest.add(3)
    honest.add(297)
    with pytest.raises(TileDirectoryError, match="differs from the log's"):
        run(honest, tmp_path)
    (tmp_path / path).unlink()
    run(honest, tmp_path)
    assert check_directory(tmp_path, honest.ref).size == 300


def test_one_writer_per_directory(tmp_path: Path) -> None:
    holder = TileDirectory(tmp_path)
    assert holder.try_lock()
    src = ListSource()
    src.add(3)
    with pytest.raises(TileDirectoryError, match="another process"):
        run(src, tmp_path)
    holder.unlock()
    run(src, tmp_path)
    assert check_directory(tmp_path).size == 3


# Crashes ----------------------------------------------------------------------------------------


class Crash(BaseException):
    """A process that died here: nothing after it runs, no handler sees it."""


STEPS = ("add_tile", "sync", "write_previous", "write_checkpoint", "remove_partials")


def _crashing(root: Path, at: int) -> tuple[TileDirectory, list[int]]:
    """A directory whose writer dies at its ``at``-th step (each file, sync, deletion, checkpoint)."""
    d = TileDirectory(root)
    done = [0]
    for name in STEPS:
        real = getattr(d, name)

        def step(*args: object, _real: object = real) -> object:
            if done[0] == at:
                raise Crash
            done[0] += 1
            return _real(*args)  # type: ignore[operator]

        setattr(d, name, step)
    return d, done


def _crash_and_recover(tmp_path: Path, src: ListSource, first: int, at: int) -> bool:
    """Publish ``src`` over a directory at size ``first``, dying at step ``at``;
    check what is left, then that the next run completes. False if no step ``at`` came."""
    root = tmp_path / f"crash{at}"
    run(src.prefix(first), root)
    published_before = (root / CHECKPOINT).read_bytes()
    d, done = _crashing(root, at)
    try:
        publish(src, d, LOG_KEY.verifier)
    except Crash:
        pass
    else:
        assert done[0] == at
        return False
    finally:
        d.unlock()
    (root / TMP / "999.1").write_bytes(b"half a tile")  # as a kill mid-write leaves
    assert (root / CHECKPOINT).read_bytes() in (published_before, src.latest().note)
    check_directory(root)
    run(src, root)
    assert check_directory(root, src.ref).size == src.size
    assert_partials_collected(root)
    assert not list((root / TMP).iterdir())
    return True


def test_a_writer_killed_at_any_step_leaves_a_whole_checkpoint(tmp_path: Path) -> None:
    """Every step of a round that completes bundles and level-0 tiles."""
    src = ListSource()
    src.add(300)
    src.add(800)
    at = 0
    while _crash_and_recover(tmp_path, src, 300, at):
        at += 1
    # 3 full bundles, the partial one, 3 full level-0 tiles, the partial
    # one, level 1's partial; the sync, .previous, the checkpoint; 2 deletions.
    assert at == 14


def test_a_writer_killed_while_a_level_fills(tmp_path: Path) -> None:
    """A round that completes a level-1 tile, killed midway through its
    files and while it deletes partial tiles after its checkpoint."""
    src = ListSource()
    src.add(300)
    src.add(65_300)
    # Every file, the sync, .previous, the checkpoint, then the deletions.
    total = len(new_tiles(300, src.size)) + 3 + len(completed(300, src.size))
    assert [t.level for t in completed(300, src.size)] == [-1, 0, 1]
    for at in (total // 2, total - 3, total - 1):
        assert _crash_and_recover(tmp_path, src, 300, at)
    assert not _crash_and_recover(tmp_path, src, 300, total)


def test_kill_9_mid_catch_up(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """A real process killed while it writes: its next run completes."""
    log: Log = app.extensions["ledger"].log
    for i in range(6):
        log.sequencer.append([b"k%d-%d" % (i, j) for j in range(10_000)])
    target = tmp_path / "tiles"
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": app.config["DATABASE_URL"],
        "LEDGER_KEY_FILE": app.config["KEY_FILE"],
        "LEDGER_ORIGIN": app.config["ORIGIN"],
        "LEDGER_DERIVED_CHECK_SECONDS": "0",
    }
    flask = [sys.executable, "-m", "flask", "--app", "app", "ledger", "publish-tiles", "--dir", str(target)]
    proc = subprocess.Popen(flask, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (target / "tile" / "0" / "000").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the writer finished before it could be killed"
    assert not (target / CHECKPOINT).exists()
    assert list((target / "tile").rglob("*"))
    res = runner.invoke(args=["ledger", "publish-tiles", "--dir", str(target)])
    assert res.exit_code == 0, res.output
    assert check_directory(target, verifier=log.verifier).size == 60_000


# The real log, the CLI and the app ---------------------------------------------------------------


def test_files_are_what_the_app_serves(app: Flask, client: FlaskClient, runner: FlaskCliRunner, tmp_path: Path) -> None:
    log: Log = app.extensions["ledger"].log
    target = tmp_path / "tiles"
    sizes = []
    for batch in (1, 300, 213, 1, 9_000, 0):
        if batch:
            log.sequencer.append([b"r%d-%d" % (batch, i) for i in range(batch)])
        res = runner.invoke(args=["ledger", "publish-tiles", "--dir", str(target)])
        assert res.exit_code == 0, res.output
        size = log.latest_size()
        sizes.append(size)
        assert (f"published tree size {size}" if batch else "is at the log's latest checkpoint") in res.output
        for path, data in files(target).items():
            served = client.get("/" + path)
            assert served.status_code == 200, path
            assert served.data == data, path
        assert check_directory(target, verifier=log.verifier).size == size
    assert sizes[-1] == 9_515


def test_follow_and_the_lock(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    log: Log = app.extensions["ledger"].log
    target = tmp_path / "tiles"
    log.sequencer.append([b"f1", b"f2"])
    res = runner.invoke(args=["ledger", "publish-tiles", "--dir", str(target), "--follow", "--count", "2"])
    assert res.exit_code == 0, res.output
    assert res.output.count("published tree size") == 1
    holder = TileDirectory(target)
    assert holder.try_lock()
    res = runner.invoke(args=["ledger", "publish-tiles", "--dir", str(target)])
    assert res.exit_code == 1
    assert "another process is publishing" in res.output
    holder.unlock()


def test_the_server_keeps_the_directory(app: Flask, tmp_path: Path) -> None:
    """LEDGER_TILES_DIR: one watcher per directory publishes; another waits."""
    log: Log = app.extensions["ledger"].log
    target = tmp_path / "tiles"
    first, second = (TilesWatch(lambda: log, target, 1.0) for _ in range(2))
    log.sequencer.append([b"w%d" % i for i in range(260)])
    res = first.round()
    assert res is not None
    assert res.size == 260
    assert second.round() is None
    log.sequencer.append([b"x"])
    res = first.round()
    assert res is not None
    assert (res.old, res.size) == (260, 261)
    assert check_directory(target, verifier=log.verifier).size == 261
