"""Key files: one signed-note key string per file, readable by the owner only.

The log's signing key (and a platform's, in later issues) never lives in the
repository or the environment; it is read from a file with mode 0600.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from keys.errors import KeyFormatError
from keys.note import Signer


def write_signer(path: Path, signer: Signer) -> None:
    """Write ``signer`` to a new file with mode 0600; never overwrite.

    The key is written to a temporary file and hard-linked into place, so a
    concurrent reader sees either no file or the whole key. Raises
    ``FileExistsError`` if ``path`` exists.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(signer.to_key() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink()


def read_signer(path: Path) -> Signer:
    """Read a signer key, refusing files that others can read or write."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFormatError(f"key file {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFormatError(f"key file {path} is accessible to other users; run: chmod 600 {path}")
    text = path.read_text().strip()
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
