"""Key files: one signed-note key string per file, readable by the owner only.

The log's signing key, a platform's key (``python -m client keygen``) and a
witness's key never live in the repository or the environment: each is
written once, atomically, to a new file with mode 0600
(:func:`write_private_text`) and read only from a file no one else can
access (:func:`read_private_text`).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from keys.errors import KeyFormatError
from keys.note import Signer


class ExposedKeyFile(KeyFormatError):
    """A private file that its group or other users can access."""


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to a new file with mode 0600; never overwrite.

    The text goes to a temporary file beside ``path`` (``O_EXCL``, 0600),
    is flushed to disk, and the file is hard-linked into place: a
    concurrent reader sees either no file or the whole text, and an
    existing file is never replaced, since ``link`` fails where ``rename``
    would overwrite. Raises ``FileExistsError`` if ``path`` exists.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink()


def read_private_text(path: Path) -> str:
    """Return the text of ``path``, refusing a file that its group or others can access.

    Raises :class:`ExposedKeyFile` (naming the file and the fix) for such a
    file, and ``OSError`` if it cannot be read.
    """
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ExposedKeyFile(f"key file {path} is accessible to other users; run: chmod 600 {path}")
    return path.read_text()


def write_signer(path: Path, signer: Signer) -> None:
    """Write ``signer`` to a new file with mode 0600 (:func:`write_private_text`),
    creating its directory (0700) if needed; never overwrite."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_text(path, signer.to_key() + "\n")


def read_signer(path: Path) -> Signer:
    """Read a signer key, refusing files that others can read or write."""
    try:
        text = read_private_text(path).strip()
    except FileNotFoundError:
        raise KeyFormatError(f"key file {path} does not exist") from None
    try:
        return Signer.from_key(text)
    except KeyFormatError as e:
        raise KeyFormatError(f"key file {path}: {e}") from None


def load_or_create_signer(path: Path, name: str) -> tuple[Signer, bool]:
    """Return the signer in ``path``, creating a new key named ``name`` if absent.

    Returns (signer, created). The name in an existing file must be ``name``.
    """
    created = False
    if not path.exists():
        try:
            write_signer(path, Signer.generate(name))
            created = True
        except FileExistsError:
            pass  # another process created it first; use theirs
    signer = read_signer(path)
    if signer.name != name:
        raise KeyFormatError(f"key file {path} holds a key named {signer.name!r}, but the log's origin is {name!r}")
    return signer, created
