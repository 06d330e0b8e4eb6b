"""Exact parsers: tile paths, entry bundles, checkpoints, signed notes, keys.

Each parser must re-encode what it accepted to the same bytes, and reject
everything else (principle 4). Hypothesis fuzzes each one.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys.errors import KeyFormatError, NoteError, ProofError
from keys.note import Signer, Verifier, open_note, sign_note
from ledger.errors import InvalidInput
from ledger.tlog.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint
from ledger.tlog.tile import Tile, encode_bundle, parse_bundle, parse_tile_path

SIGNER = Signer.from_seed("example.com/log", bytes(range(32)))


@pytest.mark.parametrize(
    "path,tile",
    [
        ("tile/0/000", Tile(0, 0)),
        ("tile/0/001.p/5", Tile(0, 1, 5)),
        ("tile/1/x001/234", Tile(1, 1234)),
        ("tile/entries/x001/x234/067.p/255", Tile(-1, 1234067, 255)),
        ("tile/63/999", Tile(63, 999)),
    ],
)
def test_tile_paths(path: str, tile: Tile) -> None:
    assert parse_tile_path(path) == tile
    assert tile.path() == path


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/0",  # not 3 digits
        "tile/0/1234",
        "tile/0/x000/001",  # leading zero group
        "tile/00/000",
        "tile/64/000",  # level above 63
        "tile/-1/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",  # a full tile has no .p
        "tile/0/000.p/007",
        "tile/0/000.p/",
        "tile/0/001/",
        "tile/0/x001",
        "tile/0/001/002",  # x prefix missing
        "tile/8/0/000",  # Go's height-carrying form
        "tile/entries/000.p/+5",
        "tile/0/٠٠١",  # non-ASCII digits
        "tile/0/000\n",
    ],
)
def test_malformed_tile_paths_are_rejected(path: str) -> None:
    with pytest.raises(InvalidInput):
        parse_tile_path(path)


@given(st.text(alphabet="tile/entriesxp.0123456789", max_size=40))
def test_tile_path_parser_is_exact(path: str) -> None:
    try:
        tile = parse_tile_path(path)
    except InvalidInput:
        return
    assert tile.path() == path


@given(st.integers(-1, 63), st.integers(0, 10**12), st.integers(1, 256))
def test_tile_path_round_trip(level: int, n: int, width: int) -> None:
    t = Tile(level, n, width)
    assert parse_tile_path(t.path()) == t


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_bundle_round_trip(entries: list[bytes]) -> None:
    data = encode_bundle(entries)
    assert parse_bundle(data, len(entries)) == entries
    if entries:
        with pytest.raises(InvalidInput):
            parse_bundle(data[:-1], len(entries))
        with pytest.raises(InvalidInput):
            parse_bundle(data, len(entries) - 1)
    with pytest.raises(InvalidInput):
        parse_bundle(data + b"\x00", len(entries))


def test_bundle_rejects_oversize_entry() -> None:
    with pytest.raises(InvalidInput):
        encode_bundle([b"x" * 65536])


ROOT = bytes(range(32))
GOOD = f"example.com/log\n42\n{base64.b64encode(ROOT).decode()}\n"


def test_checkpoint_round_trip() -> None:
    cp = parse_checkpoint(GOOD)
    assert cp == Checkpoint("example.com/log", 42, ROOT)
    assert cp.body() == GOOD


@pytest.mark.parametrize(
    "text",
    [
        GOOD[:-1],  # no final newline
        GOOD.replace("\n42\n", "\n042\n"),
        GOOD.replace("\n42\n", "\n+42\n"),
        GOOD.replace("\n42\n", "\n4_2\n"),
        GOOD.replace("\n42\n", "\n 42\n"),
        GOOD.replace("\n42\n", "\n-1\n"),
        GOOD.replace("\n42\n", "\n9223372036854775808\n"),
        GOOD.replace("=\n", "\n"),  # unpadded base64
        GOOD.replace("AAECAwQF", "AAECAwQF\n"),
        "\n42\n" + GOOD.split("\n")[2] + "\n",  # empty origin
        f"example.com/log\n1\n{base64.b64encode(bytes(31)).decode()}\n",
        GOOD + "\n",  # empty extension line
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_checkpoint(text)


@given(st.text(max_size=120))
def test_checkpoint_parser_is_exact(text: str) -> None:
    try:
        cp = parse_checkpoint(text)
    except InvalidInput:
        return
    assert cp.body() == text


def test_signed_checkpoint_opens_and_rejects_tampering() -> None:
    note = Checkpoint("example.com/log", 42, ROOT).sign(SIGNER)
    assert open_checkpoint(note, SIGNER.verifier).checkpoint.size == 42
    with pytest.raises(ProofError):
        open_checkpoint(note.replace(b"\n42\n", b"\n43\n"), SIGNER.verifier)
    other = Signer.from_seed("example.com/log", bytes(32))
    with pytest.raises(ProofError):
        open_checkpoint(note, other.verifier)
    renamed = Signer.from_seed("example.com/other", bytes(range(32)))
    with pytest.raises(ProofError):
        open_checkpoint(Checkpoint("example.com/log", 1, ROOT).sign(SIGNER), renamed.verifier)


def test_note_keeps_unknown_signatures() -> None:
    witness = Signer.from_seed("witness.example", bytes(32))
    note = sign_note("hello\n", SIGNER, witness)
    opened = open_note(note, SIGNER.verifier)
    assert [s.name for s in opened.verified] == ["example.com/log"]
    assert [s.name for s in opened.unverified] == ["witness.example"]
    assert opened.encode() == note


@pytest.mark.parametrize(
    "msg",
    [
        b"hello\n",  # no signature block
        b"hello\n\n",  # empty block
        "hello\n\n— example.com/log AAAA\n".encode(),  # too short
        "hello\n\n— example.com/log !!!!\n".encode(),
        b"hello\n\n- example.com/log AAAAAAAA\n",  # hyphen, not em dash
        "hello\n\n— example.com/log  AAAAAAAA\n".encode(),
        b"\xff\n\n",
        "hello\x07\n\n— a AAAAAAAA\n".encode(),
    ],
)
def test_malformed_notes_are_rejected(msg: bytes) -> None:
    with pytest.raises((NoteError, ProofError)):
        open_note(msg, SIGNER.verifier)


@given(st.binary(max_size=200))
def test_note_parser_never_crashes(msg: bytes) -> None:
    try:
        note = open_note(msg, SIGNER.verifier)
    except (NoteError, ProofError):
        return
    assert note.encode() == msg


def test_key_strings_round_trip() -> None:
    v = SIGNER.verifier
    assert Verifier.from_key(v.to_key()) == v
    assert Signer.from_key(SIGNER.to_key()) == SIGNER
    assert "seed" not in repr(SIGNER)
    assert SIGNER.to_key() not in repr(SIGNER)


@pytest.mark.parametrize(
    "vkey",
    [
        "example.com/log+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),  # wrong key ID
        "example.com/log+" + SIGNER.verifier.to_key().split("+")[1].upper() + "+x",
        "example.com/log",
        "exa mple+00000000+AA==",
        SIGNER.verifier.to_key().replace("+A", "+B", 1),
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str) -> None:
    with pytest.raises(KeyFormatError):
        Verifier.from_key(vkey)
