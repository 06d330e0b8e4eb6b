"""Witness cosigning without a network: cosignature/v1 keys and signatures,
the add-checkpoint wire format, the witness's decisions and state file, the
log's witness configuration and k-of-n verification."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.witness import StateFile, Witness, WitnessSetupError, status_for
from keys.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_key_id,
    cosignature_timestamp,
    cosigned_message,
)
from keys.errors import KeyFormatError, NoteError, ProofError
from keys.note import Signer, Verifier, open_note, parse_signature_line, sign_note
from ledger.cosign import parse_witnesses
from ledger.errors import InvalidInput
from ledger.tlog import merkle
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.cosigned import open_cosigned, verify_cosigned
from ledger.tlog.witness import (
    EMPTY_TREE,
    MAX_PROOF_LINES,
    AddCheckpoint,
    SizeConflict,
    TreeHead,
    UnknownLog,
    UntrustedCheckpoint,
    check_add_checkpoint,
    format_cosignatures,
    format_size,
    parse_add_checkpoint,
    parse_cosignatures,
    parse_size,
)
from tests.reference import ListReader

ORIGIN = "example.com/log"
LOG = Signer.from_seed(ORIGIN, bytes(range(32)))
W1 = CosignatureSigner.from_seed("witness.example/w1", bytes([1]) * 32)
W2 = CosignatureSigner.from_seed("witness.example/w2", bytes([2]) * 32)
ROOT = bytes(range(32))

# c2sp.org/tlog-cosignature's example: a checkpoint with the log's signature and one cosignature.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIGNATURE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+"
    "mbIUBkBIfZ+qnA=="
)
SPEC_NOTE = (
    SPEC_TEXT
    + "\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+"
    "zyWE+xeMcTOAYQ8=\n" + SPEC_COSIGNATURE + "\n"
)
# The message the spec gives for that time and checkpoint.
SPEC_MESSAGE = "cosignature/v1\ntime 1679315147\n" + SPEC_TEXT


def _tree(n: int) -> ListReader:
    ref = ListReader()
    for i in range(n):
        ref.add(b"entry %d" % i)
    return ref


def _note(size: int, root: bytes, signer: Signer = LOG) -> bytes:
    return Checkpoint(signer.name, size, root).sign(signer)


# cosignature/v1 ----------------------------------------------------------------


def test_cosignature_round_trip() -> None:
    text = Checkpoint(ORIGIN, 42, ROOT).body()
    sig = W1.cosign(text, 1_700_000_000)
    assert len(sig.sig) == 72
    assert cosignature_timestamp(sig.sig) == 1_700_000_000
    note = sign_note(text, LOG) + sig.line().encode()
    opened = open_note(note, LOG.verifier, W1.verifier)
    assert [(s.name, s.key_id) for s in opened.verified] == [(ORIGIN, LOG.key_id), (W1.name, W1.key_id)]
    assert opened.encode() == note
    # Without the witness's key the cosignature is kept, unverified.
    assert open_note(note, LOG.verifier).unverified == (sig,)


def test_cosignature_signs_header_time_and_text() -> None:
    text = Checkpoint(ORIGIN, 42, ROOT).body()
    sig = W1.cosign(text, 7)
    v = W1.verifier
    assert v.verify(text.encode(), sig.sig)
    later = (8).to_bytes(8, "big") + sig.sig[8:]
    assert not v.verify(text.encode(), later)
    assert not v.verify(text.replace("42", "43").encode(), sig.sig)
    assert not v.verify(text.encode(), sig.sig[:-1])
    # A plain Ed25519 note signature by the same key is not a cosignature (domain separation).
    plain = Signer.from_seed(W1.name, W1.seed).sign(text.encode())
    assert not v.verify(text.encode(), (7).to_bytes(8, "big") + plain)
    # Timestamps beyond 2^63 - 1 are invalid.
    assert not v.verify(text.encode(), (1 << 63).to_bytes(8, "big") + sig.sig[8:])


def test_cosignature_key_id_and_vkey() -> None:
    pub = W1.verifier.public_key
    assert W1.key_id == hashlib.sha256(W1.name.encode() + b"\n\x04" + pub).digest()[:4]
    assert cosignature_key_id(W1.name, pub) == W1.key_id
    vkey = W1.verifier.to_key()
    key = base64.b64encode(bytes([4]) + pub).decode()
    assert vkey == f"{W1.name}+{W1.key_id.hex()}+{key}"
    assert CosignatureVerifier.from_key(vkey) == W1.verifier
    # The same key as a plain Ed25519 note key has another type byte and ID.
    with pytest.raises(KeyFormatError):
        Verifier.from_key(vkey)
    with pytest.raises(KeyFormatError):
        CosignatureVerifier.from_key(LOG.verifier.to_key())
    assert CosignatureSigner.from_key(W1.to_key()) == W1
    assert "seed" not in repr(W1)
    assert W1.to_key() not in repr(W1)
    with pytest.raises(KeyFormatError):
        CosignatureSigner.from_key(LOG.to_key())


def test_spec_example_cosignature() -> None:
    sig = parse_signature_line(SPEC_COSIGNATURE)
    assert sig.name == "witness.example.com/w1"
    assert len(sig.key_id) == 4
    assert len(sig.sig) == 72
    assert cosignature_timestamp(sig.sig) == 1679315147
    assert cosigned_message(SPEC_TEXT, 1679315147) == SPEC_MESSAGE.encode()
    # A key of the same name but another ID is unknown: the line is kept, unverified.
    other = CosignatureSigner.from_seed("witness.example.com/w1", bytes(32)).verifier
    log = Signer.from_seed("example.com/behind-the-sofa", bytes(32)).verifier
    with pytest.raises(ProofError):  # no key of ours signed it
        open_note(SPEC_NOTE.encode(), log, other)


def test_cosigned_message_rejects_bad_input() -> None:
    with pytest.raises(NoteError):
        cosigned_message("no newline", 1)
    with pytest.raises(NoteError):
        cosigned_message("x\n", -1)
    with pytest.raises(NoteError):
        cosigned_message("x\n", 1 << 63)


# The add-checkpoint wire format --------------------------------------------------

NOTE = _note(5, ROOT)
GOOD_BODY = b"old 3\n" + base64.b64encode(bytes(32)) + b"\n" + base64.b64encode(ROOT) + b"\n\n" + NOTE


def test_add_checkpoint_round_trip() -> None:
    req = parse_add_checkpoint(GOOD_BODY)
    assert req == AddCheckpoint(3, (bytes(32), ROOT), NOTE)
    assert req.encode() == GOOD_BODY
    assert req.origin == ORIGIN
    zero = AddCheckpoint(0, (), NOTE)
    assert zero.encode() == b"old 0\n\n" + NOTE
    assert parse_add_checkpoint(zero.encode()) == zero
    # A checkpoint may carry several signatures; they pass through untouched.
    cosigned = NOTE + W1.cosign(Checkpoint(ORIGIN, 5, ROOT).body(), 1).line().encode()
    assert parse_add_checkpoint(b"old 0\n\n" + cosigned).checkpoint == cosigned


def test_spec_example_request_parses() -> None:
    proof = [
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
        "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
        "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
        "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
    ]
    body = ("old 20852014\n" + "".join(p + "\n" for p in proof) + "\n" + SPEC_NOTE).encode()
    req = parse_add_checkpoint(body)
    assert (req.old_size, len(req.proof), req.origin) == (20852014, 4, "example.com/behind-the-sofa")


B64 = base64.b64encode(bytes(32))


@pytest.mark.parametrize(
    "body",
    [
        b"old 3\n" + NOTE,  # no empty line
        b"old 03\n\n" + NOTE,
        b"old +3\n\n" + NOTE,
        b"old -1\n\n" + NOTE,
        b"old 3 \n\n" + NOTE,
        b"old  3\n\n" + NOTE,
        b"Old 3\n\n" + NOTE,
        b"old 3\r\n\n" + NOTE,
        b"old\n\n" + NOTE,
        b"old 9223372036854775808\n\n" + NOTE,
        b"old 3\n" + B64.rstrip(b"=") + b"\n\n" + NOTE,  # unpadded
        b"old 3\n" + base64.b64encode(bytes(31)) + b"\n\n" + NOTE,  # short hash
        b"old 3\n" + B64 + b" \n\n" + NOTE,
        b"old 3\n" + b"\n".join([B64] * (MAX_PROOF_LINES + 1)) + b"\n\n" + NOTE,
        "old ３\n\n".encode() + NOTE,  # not ASCII
        b"old 3\n\n",  # no checkpoint
        b"\nold 3\n\n" + NOTE,
        b"",
    ],
)
def test_malformed_add_checkpoint_bodies_are_rejected(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_add_checkpoint(body)


def test_add_checkpoint_allows_63_proof_lines() -> None:
    body = b"old 3\n" + b"\n".join([B64] * MAX_PROOF_LINES) + b"\n\n" + NOTE
    assert len(parse_add_checkpoint(body).proof) == MAX_PROOF_LINES


@given(st.binary(max_size=200))
def test_add_checkpoint_parser_is_exact(body: bytes) -> None:
    try:
        req = parse_add_checkpoint(body)
    except InvalidInput:
        return
    assert req.encode() == body


@given(st.text(alphabet="old 0123456789\n+-", max_size=30))
def test_add_checkpoint_head_parser_is_exact(head: str) -> None:
    body = head.encode() + b"\n" + NOTE
    try:
        req = parse_add_checkpoint(body)
    except InvalidInput:
        return
    assert req.encode() == body


def test_size_body() -> None:
    assert parse_size(b"0\n") == 0
    assert parse_size(format_size(20852014)) == 20852014
    for bad in (b"5", b"05\n", b"+5\n", b" 5\n", b"5\n\n", b"5\r\n", b"\n", b"", b"-1\n", b"9223372036854775808\n"):
        with pytest.raises(InvalidInput):
            parse_size(bad)


def test_cosignature_response_body() -> None:
    text = Checkpoint(ORIGIN, 5, ROOT).body()
    sigs = [W1.cosign(text, 1), W2.cosign(text, 2)]
    body = format_cosignatures(sigs)
    assert parse_cosignatures(body) == sigs
    for bad in (body[:-1], body + b"\n", b"\n" + body, body.replace("—".encode(), b"-", 1), b""):
        with pytest.raises(InvalidInput):
            parse_cosignatures(bad)


# The witness's decisions ---------------------------------------------------------

TRUSTED = {ORIGIN: [LOG.verifier]}


def _request(ref: ListReader, old: int, new: int, signer: Signer = LOG) -> AddCheckpoint:
    proof = merkle.prove_tree(new, old, ref) if 0 < old < new else []
    return AddCheckpoint(old, tuple(proof), _note(new, merkle.tree_hash(new, ref), signer))


def _head(ref: ListReader, n: int) -> TreeHead:
    return TreeHead(n, merkle.tree_hash(n, ref))


def test_witness_accepts_every_consistent_step() -> None:
    ref = _tree(20)
    for new in range(1, 21):
        assert check_add_checkpoint(_request(ref, 0, new), TRUSTED, None).head == _head(ref, new)
        for old in range(1, new + 1):
            accepted = check_add_checkpoint(_request(ref, old, new), TRUSTED, _head(ref, old))
            assert accepted.head == _head(ref, new)


def test_witness_rejects_every_corrupted_proof() -> None:
    ref = _tree(13)
    for old, new in ((1, 13), (5, 13), (8, 13), (12, 13), (3, 7)):
        good = _request(ref, old, new)
        for i, h in enumerate(good.proof):
            for bit in (0, 7, 255):
                bad = bytearray(h)
                bad[bit // 8] ^= 1 << (bit % 8)
                proof = good.proof[:i] + (bytes(bad),) + good.proof[i + 1 :]
                req = AddCheckpoint(old, proof, good.checkpoint)
                with pytest.raises(ProofError) as e:
                    check_add_checkpoint(req, TRUSTED, _head(ref, old))
                assert not isinstance(e.value, UntrustedCheckpoint)
        # Dropping or adding a hash fails too.
        for proof in (good.proof[:-1], good.proof + (bytes(32),)):
            with pytest.raises(ProofError):
                check_add_checkpoint(AddCheckpoint(old, proof, good.checkpoint), TRUSTED, _head(ref, old))


def test_witness_statuses() -> None:
    ref = _tree(10)
    known = _head(ref, 4)
    # 404: an origin the witness does not witness.
    other = Signer.from_seed("other.example/log", bytes(32))
    with pytest.raises(UnknownLog) as e404:
        check_add_checkpoint(_request(ref, 4, 10, other), TRUSTED, known)
    # 403: the right origin, signed by another key.
    impostor = Signer.from_seed(ORIGIN, bytes(32))
    with pytest.raises(UntrustedCheckpoint) as e403:
        check_add_checkpoint(_request(ref, 4, 10, impostor), TRUSTED, known)
    # 403 too when the log's own signature line is corrupted.
    req = _request(ref, 4, 10)
    sig = req.checkpoint.rsplit(b" ", 1)[1]
    flipped = base64.b64encode(bytes([base64.b64decode(sig)[0]]) + bytes(71)).decode()
    corrupted = AddCheckpoint(4, req.proof, req.checkpoint.replace(sig, flipped.encode() + b"\n"))
    with pytest.raises(UntrustedCheckpoint):
        check_add_checkpoint(corrupted, TRUSTED, known)
    # 400: old size beyond the checkpoint.
    with pytest.raises(InvalidInput) as e400:
        check_add_checkpoint(AddCheckpoint(11, (), _note(10, merkle.tree_hash(10, ref))), TRUSTED, known)
    # 409: the witness knows another size; the answer carries it.
    with pytest.raises(SizeConflict) as e409:
        check_add_checkpoint(_request(ref, 0, 10), TRUSTED, known)
    assert e409.value.size == 4
    with pytest.raises(SizeConflict):
        check_add_checkpoint(_request(ref, 5, 10), TRUSTED, known)
    # 409: the same size with another root (a fork).
    fork = AddCheckpoint(4, (), _note(4, bytes(32)))
    with pytest.raises(SizeConflict) as fork409:
        check_add_checkpoint(fork, TRUSTED, known)
    assert fork409.value.size == 4
    # 422: a proof from the empty tree must be empty.
    with pytest.raises(ProofError) as e422:
        check_add_checkpoint(AddCheckpoint(0, (bytes(32),), _note(10, merkle.tree_hash(10, ref))), TRUSTED, None)
    # The same tree again is cosigned again.
    assert check_add_checkpoint(_request(ref, 4, 4), TRUSTED, known).head == known
    # The empty tree has one root.
    with pytest.raises(SizeConflict):
        check_add_checkpoint(AddCheckpoint(0, (), _note(0, bytes(32))), TRUSTED, None)
    assert check_add_checkpoint(AddCheckpoint(0, (), _note(0, merkle.EMPTY_ROOT)), TRUSTED, None).head == EMPTY_TREE
    statuses = [status_for(e.value) for e in (e404, e403, e400, e409, e422)]
    assert statuses == [404, 403, 400, 409, 422]


# The witness's state file ----------------------------------------------------------


def _witness(tmp_path: Path, state: StateFile | None = None) -> Witness:
    return Witness(W1, [LOG.verifier], state or StateFile(tmp_path / "state.json"), clock=lambda: 1_700_000_000)


def test_witness_persists_before_answering(tmp_path: Path) -> None:
    ref = _tree(9)
    w = _witness(tmp_path)
    body = w.add_checkpoint(_request(ref, 0, 5).encode())
    (sig,) = parse_cosignatures(body)
    text = Checkpoint(ORIGIN, 5, merkle.tree_hash(5, ref)).body()
    assert W1.verifier.verify(text.encode(), sig.sig)
    assert cosignature_timestamp(sig.sig) == 1_700_000_000
    doc = json.loads((tmp_path / "state.json").read_text())
    assert doc == {
        "version": 1,
        "logs": {ORIGIN: {"size": 5, "root": base64.b64encode(merkle.tree_hash(5, ref)).decode()}},
    }
    # A second process cannot open the same state while the first runs.
    with pytest.raises(WitnessSetupError, match="in use"):
        StateFile(tmp_path / "state.json")
    w.state.close()
    # Restarted, it remembers: old 0 is now a conflict, old 5 goes on.
    w2 = _witness(tmp_path)
    with pytest.raises(SizeConflict) as e:
        w2.add_checkpoint(_request(ref, 0, 9).encode())
    assert e.value.size == 5
    w2.add_checkpoint(_request(ref, 5, 9).encode())
    assert w2.state.heads[ORIGIN] == _head(ref, 9)
    w2.state.close()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"version": 2, "logs": {}}',
        '{"version": 1, "logs": {}, "x": 1}',
        '{"version": 1, "logs": {"a": {"size": "5", "root": ""}}}',
        '{"version": 1, "logs": {"a": {"size": 5, "root": "AA"}}}',
        '{"version": 1, "logs": {"a": {"size": 5, "root": "AA=="}}}',
        '{"version": 1, "logs": {"a": {"size": 1, "root": "%s"}, "a": {"size": 2, "root": "%s"}}}',
    ],
)
def test_malformed_state_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text.replace("%s", base64.b64encode(ROOT).decode()))
    with pytest.raises(WitnessSetupError, match="malformed state file"):
        StateFile(path)
    StateFile(path.with_name("other.json")).close()  # the lock was released


def test_concurrent_requests_cannot_roll_the_witness_back(tmp_path: Path) -> None:
    """Check and persist are one step: of many requests from the same old size, one wins."""

    class SlowState(StateFile):
        def put(self, origin: str, head: TreeHead) -> None:
            threading.Event().wait(0.02)  # widen the window between check and persist
            super().put(origin, head)

    ref = _tree(12)
    w = _witness(tmp_path, SlowState(tmp_path / "state.json"))
    outcomes: dict[int, str] = {}

    def submit(n: int) -> None:
        try:
            w.add_checkpoint(_request(ref, 0, n).encode())
            outcomes[n] = "cosigned"
        except SizeConflict:
            outcomes[n] = "409"

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(2, 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(outcomes.values()) == ["409"] * 9 + ["cosigned"]
    (winner,) = [n for n, o in outcomes.items() if o == "cosigned"]
    assert w.state.heads[ORIGIN] == _head(ref, winner)
    w.state.close()


# The log's configuration -----------------------------------------------------------


def test_parse_witnesses() -> None:
    cfg = [
        {"url": "http://127.0.0.1:7380/", "vkey": W1.verifier.to_key()},
        {"url": "https://w2.example/sub", "vkey": W2.verifier.to_key()},
    ]
    ws = parse_witnesses(cfg)
    assert [(w.url, w.verifier) for w in ws] == [
        ("http://127.0.0.1:7380", W1.verifier),
        ("https://w2.example/sub", W2.verifier),
    ]
    assert parse_witnesses(json.dumps(cfg)) == ws
    assert parse_witnesses([]) == ()


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        {"url": "http://a", "vkey": "x"},
        [{"url": "http://a"}],
        [{"url": "http://a", "vkey": W1.verifier.to_key(), "extra": 1}],
        [{"url": "ftp://a", "vkey": W1.verifier.to_key()}],
        [{"url": "http://a?x=1", "vkey": W1.verifier.to_key()}],
        [{"url": "http://a", "vkey": LOG.verifier.to_key()}],  # a plain note key, not a cosigner
        [{"url": "http://a", "vkey": W1.verifier.to_key()}, {"url": "http://b", "vkey": W1.verifier.to_key()}],
        # The same public key under another name would count twice.
        [
            {"url": "http://a", "vkey": W1.verifier.to_key()},
            {"url": "http://b", "vkey": CosignatureSigner.from_seed("x.example/w", W1.seed).verifier.to_key()},
        ],
    ],
)
def test_malformed_witness_configurations_are_rejected(value: object) -> None:
    with pytest.raises(InvalidInput):
        parse_witnesses(value)


# k of n --------------------------------------------------------------------------


def test_verify_cosigned_quorum() -> None:
    text = Checkpoint(ORIGIN, 5, ROOT).body()
    w3 = CosignatureSigner.from_seed("witness.example/w3", bytes([3]) * 32)
    note = sign_note(text, LOG) + W1.cosign(text, 10).line().encode() + W2.cosign(text, 20).line().encode()
    keys = [W1.verifier.to_key(), W2.verifier.to_key(), w3.verifier.to_key()]
    assert verify_cosigned(note, LOG.verifier.to_key(), keys, 2) == Checkpoint(ORIGIN, 5, ROOT)
    opened = open_cosigned(note, LOG.verifier, keys, 0)
    assert [(c.name, c.timestamp) for c in opened.cosigners] == [(W1.name, 10), (W2.name, 20)]
    with pytest.raises(ProofError, match="2 of the 3"):
        verify_cosigned(note, LOG.verifier, keys, 3)
    with pytest.raises(InvalidInput):
        verify_cosigned(note, LOG.verifier, keys, 4)
    # Two lines by one witness count once.
    twice = sign_note(text, LOG) + W1.cosign(text, 10).line().encode() + W1.cosign(text, 11).line().encode()
    with pytest.raises(ProofError):
        verify_cosigned(twice, LOG.verifier, keys, 2)
    # A witness key listed twice is refused rather than counted twice.
    with pytest.raises(InvalidInput):
        verify_cosigned(note, LOG.verifier, [keys[0], keys[0]], 2)
    # A bad cosignature by a trusted witness rejects the note.
    forged = sign_note(text, LOG) + W1.cosign(text.replace("5", "6", 1), 10).line().encode()
    with pytest.raises(ProofError):
        verify_cosigned(forged, LOG.verifier, keys, 0)
    # Cosignatures without the log's signature are not enough.
    unsigned = sign_note(text, Signer.from_seed("x.example", bytes(32))) + W1.cosign(text, 1).line().encode()
    with pytest.raises(ProofError):
        verify_cosigned(unsigned, LOG.verifier, keys, 1)
