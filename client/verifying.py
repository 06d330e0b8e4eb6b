"""Verifying the log's answers: its key, its checkpoints, its receipts.

Nothing the log answers is believed unchecked:

* every checkpoint is signed by the log's key (given out of band, or pinned
  on first use in a state file, like ssh's known_hosts);
* each record's log entry hashes to the returned leaf hash, and that leaf is
  in the checkpoint's tree (RFC 9162 §2.1.3; :mod:`client.submitting`);
* each checkpoint is consistent with every other one this client has seen,
  in this run or, through the state file, an earlier one (§2.1.4), so the
  log cannot show it two histories.

Only ``status`` and ``permalink`` are taken on trust; neither is evidence.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from client.http import ClientError, Http
from keys.note import Verifier, b64decode_exact
from ledger.errors import InvalidInput, LedgerError
from ledger.tlog.checkpoint import Checkpoint
from ledger.tlog.merkle import HASH_SIZE
from ledger.tlog.verify import verify_checkpoint

T = TypeVar("T")
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


class VerificationFailed(ClientError):
    """The log's answer does not prove what it claims. Never retried."""


# Receipts and answers ---------------------------------------------------------


# Receipts: c2sp.org/tlog-proof files -------------------------------------------------


@dataclass(frozen=True)
class TlogProof:
    """A parsed c2sp.org/tlog-proof file; ``extra`` is the log entry in our receipts."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def encode(self) -> bytes:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append("extra " + _b64(self.extra))
        lines += [f"index {self.index}", *(_b64(h) for h in self.proof)]
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse a tlog-proof file exactly: re-encoding must give the same bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("not a tlog-proof: not UTF-8 text") from None
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if lines[0] != PROOF_HEADER:
        raise InvalidInput(f"not a tlog-proof: the first line must be {PROOF_HEADER}")
    if not sep or not note:
        raise InvalidInput("malformed tlog-proof: no blank line followed by a checkpoint")
    extra = None
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        extra = b64decode_exact(rest.pop(0)[len("extra ") :], "tlog-proof extra line")
    if not rest or not rest[0].startswith("index ") or not _DECIMAL.fullmatch(rest[0][len("index ") :]):
        raise InvalidInput("malformed tlog-proof: expected the line 'index N' (a decimal without leading zeros)")
    index = int(rest.pop(0)[len("index ") :])
    proof = []
    for n, line in enumerate(rest, 1):
        h = b64decode_exact(line, f"tlog-proof hash {n}")
        if len(h) != 32:
            raise InvalidInput(f"malformed tlog-proof: hash {n} is {len(h)} bytes, not 32")
        proof.append(h)
    p = TlogProof(index, tuple(proof), note.encode(), extra)
    if p.encode() != data:
        raise AssertionError("tlog-proof: re-encoding differs after an exact parse")
    return p


@dataclass(frozen=True)
class Receipt:
    """Proof that one record is in the log: everything needed to re-verify it offline."""

    platform: str
    record_id: str
    status: str
    leaf_index: int
    leaf_hash: bytes
    logged_at: str
    tree_size: int
    inclusion_path: list[bytes]
    permalink: str
    checkpoint: str
    entry: bytes = b""

    def tlog_proof(self) -> TlogProof:
        """The receipt as a c2sp.org/tlog-proof carrying the entry: what ``check-receipt`` verifies."""
        return TlogProof(self.leaf_index, tuple(self.inclusion_path), self.checkpoint.encode(), self.entry)

    def to_json(self) -> dict[str, Any]:
        """The receipt line (``status`` left out: a re-run writes the same receipts).

        ``tlog_proof`` is the whole receipt in c2sp.org/tlog-proof form, the
        entry included, so that the line can be checked offline on its own.
        """
        out = {k: v for k, v in asdict(self).items() if k not in ("status", "entry")}
        return {
            **out,
            "leaf_hash": _b64(self.leaf_hash),
            "inclusion_path": [_b64(h) for h in self.inclusion_path],
            "tlog_proof": self.tlog_proof().encode().decode(),
        }


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def get_field(obj: Any, key: str, kind: type[T]) -> T:
    v = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise InvalidInput(f"{key}: missing or not a {kind.__name__}")
    return v


def b64_hash(s: Any, what: str) -> bytes:
    raw = b64decode_exact(s, what) if isinstance(s, str) else b""
    if len(raw) != HASH_SIZE:
        raise InvalidInput(f"{what}: not the base64 of a {HASH_SIZE}-byte hash")
    return raw


def parse_receipt(r: Any, note: str) -> Receipt:
    """Parse one element of the answer's ``records``; no verification yet."""
    status = get_field(r, "status", str)
    if status not in ("created", "existing"):
        raise InvalidInput(f"status: unknown value {status!r}")
    path = get_field(r, "inclusion_path", list)
    return Receipt(
        platform=get_field(r, "platform", str),
        record_id=get_field(r, "record_id", str),
        status=status,
        leaf_index=get_field(r, "leaf_index", int),
        leaf_hash=b64_hash(r.get("leaf_hash"), "leaf_hash"),
        logged_at=get_field(r, "logged_at", str),
        tree_size=get_field(r, "tree_size", int),
        inclusion_path=[b64_hash(h, "inclusion_path") for h in path],
        permalink=get_field(r, "permalink", str),
        checkpoint=note,
    )


# Trust: the log's key and the latest checkpoint seen ----------------------------


class TrustStore:
    """A JSON state file: per log URL, the pinned verifier key and latest checkpoint.

    Like ssh's known_hosts: the first run pins what the log serves; later
    runs hold the log to it. Rewritten atomically (temp file + rename).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text()) if path.exists() else {"version": 1, "logs": {}}
        except (OSError, ValueError) as e:
            raise ClientError(f"cannot read state file {path}: {e}") from None
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("logs"), dict):
            raise ClientError(f"state file {path} is not an mdl state file (version 1)")
        self.data = data

    def get(self, url: str) -> dict[str, str]:
        """The pinned ``verifier_key`` and ``checkpoint`` (signed note) of ``url``, where present."""
        entry = self.data["logs"].get(url)
        entry = entry if isinstance(entry, dict) else {}
        return {k: v for k, v in entry.items() if k in ("verifier_key", "checkpoint") and isinstance(v, str)}

    def put(self, url: str, vkey: str, checkpoint: str | None) -> None:
        self.data["logs"][url] = {"verifier_key": vkey, **({"checkpoint": checkpoint} if checkpoint else {})}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)


def verifier_from_key(vkey: str, source: str) -> Verifier:
    try:
        return Verifier.from_key(vkey.strip())
    except InvalidInput as e:
        raise ClientError(f"{source}: {e}") from None


def open_checkpoint(note: str, verifier: Verifier, what: str) -> Checkpoint:
    try:
        return verify_checkpoint(note.encode(), verifier)
    except LedgerError as e:
        raise VerificationFailed(f"{what} is not a checkpoint signed by the log's key: {e}") from None


def establish_trust(
    http: Http, vkey: str | None, store: TrustStore | None, warn: Callable[[str], None]
) -> tuple[Verifier, str | None]:
    """Decide which key the log's checkpoints must verify under.

    In order: ``vkey`` (given out of band; it must agree with the store),
    the key pinned in ``store``, or, trust on first use, the key the log
    serves, with a warning. Returns it with the signed note of the latest
    checkpoint already known (pinned, or served with the key), if any.
    """
    pinned = store.get(http.base_url) if store else {}
    if vkey is not None:
        verifier = verifier_from_key(vkey, "--vkey")
        if "verifier_key" in pinned and pinned["verifier_key"] != verifier.to_key():
            raise ClientError(
                f"the state file {store.path if store else ''} pins another key for {http.base_url}: "
                f"{pinned['verifier_key']}; if the log really changed its key, remove that entry"
            )
        return verifier, pinned.get("checkpoint")
    if "verifier_key" in pinned:
        return verifier_from_key(pinned["verifier_key"], f"the state file {store.path if store else ''}"), pinned.get(
            "checkpoint"
        )
    info = http.get_json("/api/v1/log")
    try:
        verifier = verifier_from_key(get_field(info, "verifier_key", str), "the log's verifier_key")
        note = get_field(get_field(info, "checkpoint", dict), "signed_note", str)
    except InvalidInput as e:
        raise VerificationFailed(f"malformed answer from /api/v1/log: {e}") from None
    where = f"pinned in {store.path}" if store else "trusted for this run only"
    warn(
        f"warning: no --vkey given, so the log's own key {verifier.to_key()} is {where}. "
        "Check it against the key the log operator publishes."
    )
    return verifier, note
