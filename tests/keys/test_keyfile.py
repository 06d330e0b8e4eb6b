"""Private key files (keys/keyfile.py): one writer and one reader for the log's,
a platform's and a witness's keys."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client.cli.files import read_platform_key, write_platform_key
from client.http import ClientError
from client.witness import WitnessSetupError, read_witness_key, write_witness_key
from keys.cosignature import CosignatureSigner
from keys.errors import KeyFormatError
from keys.keyfile import ExposedKeyFile, read_private_text, read_signer, write_private_text, write_signer
from keys.note import Signer
from keys.records import PlatformKey


def test_private_text_is_written_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    write_private_text(path, "one\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_private_text(path) == "one\n"
    with pytest.raises(FileExistsError):
        write_private_text(path, "two\n")
    assert read_private_text(path) == "one\n"
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary file left behind


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o610, 0o602, 0o601])
def test_a_file_others_can_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret"
    write_private_text(path, "text\n")
    path.chmod(mode)
    with pytest.raises(ExposedKeyFile, match=f"key file {path} is accessible to other users; run: chmod 600"):
        read_private_text(path)
    with pytest.raises(FileNotFoundError):
        read_private_text(tmp_path / "absent")


KINDS: list[tuple[Any, Callable[[Path, Any], None], Callable[[Path], Any], type[Exception]]] = [
    (Signer.generate("keyfile.example/log"), write_signer, read_signer, KeyFormatError),
    (PlatformKey.generate(), write_platform_key, read_platform_key, ClientError),
    (CosignatureSigner.generate("keyfile.example/witness"), write_witness_key, read_witness_key, WitnessSetupError),
]


def _text(key: Any) -> str:
    return key.to_text() if isinstance(key, PlatformKey) else key.to_key()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("key", "write", "read", "error"), KINDS)
def test_every_key_file_is_written_and_read_alike(
    tmp_path: Path, key: Any, write: Callable[[Path, Any], None], read: Callable[[Path], Any], error: type[Exception]
) -> None:
    path = tmp_path / "k.key"
    write(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _text(read(path)) == _text(key)
    with pytest.raises(FileExistsError):
        write(path, key)
    path.chmod(0o644)
    with pytest.raises(error, match="accessible to other users; run: chmod 600"):
        read(path)
    path.chmod(0o600)
    path.write_text("not a key\n")
    with pytest.raises(error, match=f"key file {path}: "):
        read(path)
