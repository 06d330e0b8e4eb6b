"""Files, the command line's business: key files, NDJSON and JSON in, all-or-nothing out.

Expected failures print one clean message (or one line per bad input line)
and exit non-zero, never with a traceback.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from client.http import ClientError
from keys.keyfile import ExposedKeyFile, read_private_text, write_private_text
from keys.records import PlatformKey
from ledger.errors import InvalidInput
from ledger.records.entries import parse_json

T = TypeVar("T")
#: At most this many bad lines are listed; the rest are counted.
MAX_REPORTED = 20

# Key files ---------------------------------------------------------------------


def write_platform_key(path: Path, key: PlatformKey) -> None:
    """Write ``key`` to a new file with mode 0600 (keys/keyfile.py); never overwrite.

    Raises ``FileExistsError`` if ``path`` exists.
    """
    write_private_text(path, key.to_text() + "\n")


def read_platform_key(path: Path) -> PlatformKey:
    """Read a platform key, refusing a file that others can read or write."""
    try:
        return PlatformKey.from_text(read_private_text(path))
    except OSError as e:
        raise ClientError(f"cannot read key file {path}: {e.strerror}") from None
    except ExposedKeyFile as e:
        raise ClientError(str(e)) from None
    except InvalidInput as e:
        raise ClientError(f"key file {path}: {e}") from None


# NDJSON ------------------------------------------------------------------------


def parse_lines(lines: Iterable[bytes], parse: Callable[[Any, int], T]) -> Iterator[tuple[int, T | InvalidInput]]:
    """Parse NDJSON strictly (:func:`ledger.records.entries.parse_json`), one value a line.

    Yields (line number, ``parse(value, line number)`` or the error), so a
    caller can report every bad line before writing anything. Blank lines
    are skipped but counted.
    """
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield n, parse(parse_json(line), n)
        except InvalidInput as e:
            yield n, e


def read_records(data: bytes) -> Iterator[tuple[str, Any, int | None]]:
    """The records of a file: one JSON value, an array of them, or NDJSON.

    Yields (where, the parsed record or the :class:`InvalidInput` saying why
    not, NDJSON line number or None): "record N" for an element of an array,
    "line N" for NDJSON, "record" for a lone value. A document that is
    neither one JSON value nor NDJSON is reported once, with the error of
    reading it as one value when it does not look like NDJSON (its first
    line is not a whole value), so a pretty-printed file with one mistake
    gets one message, not one per line.
    """
    try:
        whole = parse_json(data)
    except InvalidInput as e:
        lines = data.splitlines()
        first = next((line for line in lines if line.strip()), b"")
        try:
            parse_json(first)
        except InvalidInput:
            yield "record", InvalidInput(f"not JSON (one record or an array) nor NDJSON: {e}"), None
            return
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield f"line {n}", parse_json(line), n
                except InvalidInput as err:
                    yield f"line {n}", err, n
        return
    if isinstance(whole, list):
        for n, rec in enumerate(whole, 1):
            yield f"record {n}", rec, None
    else:
        yield "record", whole, None


class BadLines:
    """Collects ``line N: message`` for the first few bad lines (or other
    ``unit``: statements), counts the rest."""

    def __init__(self, unit: str = "line") -> None:
        self.unit = unit
        self.messages: list[str] = []
        self.count = 0

    def add(self, n: int, e: InvalidInput) -> None:
        self.add_message(f"{self.unit} {n}: {e}")

    def add_message(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < MAX_REPORTED:
            self.messages.append(message)

    def exit_if_any(self) -> None:
        """Print them and exit 1, if there were any."""
        if not self.count:
            return
        for msg in self.messages:
            click.echo(msg, err=True)
        if self.count > len(self.messages):
            click.echo(f"... and {self.count - len(self.messages)} more bad {self.unit}s", err=True)
        sys.exit(1)


@contextmanager
def all_or_nothing(path: Path) -> Iterator[IO[bytes]]:
    """A sink for ``path`` ("-" is stdout) whose bytes appear only if the block completes.

    Stdout is buffered in memory; a file is written beside ``path`` and
    renamed over it, so a reader never sees a partial file.
    """
    if str(path) == "-":
        buf = io.BytesIO()
        yield buf
        with click.open_file("-", "wb") as out:
            out.write(buf.getvalue())
        return
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)  # noqa: SIM115
    try:
        with tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)
