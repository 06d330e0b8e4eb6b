"""``python -m demo``: fill a running ledger with the synthetic demo ledger.

Run it with the server's ``LEDGER_*`` environment (``make demo`` next to
``make run`` shares the defaults, ``LEDGER_BIND`` included: it is where the
demo looks for the server unless ``--url`` says otherwise). Steps, each safe to repeat:

1. generate and sign the records (:func:`demo.generate.generate`);
2. register the demo platforms as the operator would (``flask --app app
   ledger platform add``), skipping those already registered;
3. submit through the JSON API with the platform client, which verifies
   every answer against the log's key (from ``flask ledger vkey``);
   halfway, one platform rotates its key (``ledger platform add-key``);
4. print what was created, what was already logged, and where to look.

A second run appends nothing: the log answers "existing" for every record.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from client.http import ClientError, Http, RetryPolicy, Unreachable, check_base_url
from client.signing import SignedItem
from client.submitting import submit_items
from client.verifying import VerificationFailed
from demo.cast import PLATFORMS
from demo.coverage import signed_statements
from demo.generate import MIN_RECORDS, Demo, generate
from demo.operator import ROOT, Operator, OperatorError
from ledger.errors import LedgerError

DEFAULT_URL = "http://127.0.0.1:8000"
#: Where gunicorn listens on every address; the demo reaches it on the loopback.
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}  # noqa: S104  (read from LEDGER_BIND, not bound)


def default_url(environ: Mapping[str, str] = os.environ) -> str:
    """The server that ``make run`` started with the same environment: its
    ``LEDGER_BIND`` (gunicorn.conf.py's default 127.0.0.1:8000) as a URL.
    A Unix socket or a list of addresses gives the documented default."""
    bind = environ.get("LEDGER_BIND", "").strip()
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or "," in bind or " " in bind or host == "unix":
        return DEFAULT_URL
    return f"http://{ANY_ADDRESS.get(host, host)}:{port}"


DEFAULT_SEED = "2026"


def _fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def write_keys(demo: Demo, directory: Path) -> None:
    """Write each demo key to ``directory/<slug>-<key id>.key`` (mode 0600), as ``client keygen`` would."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for slug, keys in demo.keys.items():
        for key in keys:
            path = directory / f"{slug}-{key.key_id}.key"
            if path.exists():
                continue
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key.to_text() + "\n")


def _registered(http: Http) -> dict[str, set[str]]:
    """Key IDs registered per platform, as the server's registry shows them."""
    answer = http.get_json("/api/v1/platforms")
    return {p["platform"]: {k["key_id"] for k in p["keys"]} for p in answer["platforms"]}


def register(op: Operator, http: Http, demo: Demo, echo: Any) -> None:
    """Register every demo platform with its first key, unless it already is."""
    known = _registered(http)
    for platform in PLATFORMS:
        first = demo.keys[platform.slug][0]
        if platform.slug not in known:
            try:
                echo(op.add_platform(platform.slug, platform.name, first))
            except OperatorError as e:
                if "already registered" not in str(e):
                    raise
                echo(f"{platform.slug}: already registered")
        elif first.key_id in known[platform.slug]:
            echo(f"{platform.slug}: already registered with key {first.key_id}")
        else:
            raise _fail(
                f"{platform.slug} is registered with other keys ({', '.join(sorted(known[platform.slug]))}): "
                f"this log holds a demo made with another --seed; use that seed, or a fresh database"
            )
    missing = [p.slug for p in PLATFORMS if demo.keys[p.slug][0].key_id not in _registered(http).get(p.slug, set())]
    if missing:
        raise _fail(
            f"the server at {http.base_url} does not see {', '.join(missing)} after registration: the flask "
            "command wrote to another database. Run the demo with the server's LEDGER_DATABASE_URL"
        )


def rotate(op: Operator, http: Http, demo: Demo, echo: Any) -> None:
    """Register each rotating platform's second key, unless it already is."""
    known = _registered(http)
    for platform in PLATFORMS:
        keys = demo.keys[platform.slug]
        if len(keys) < 2:
            continue
        if keys[1].key_id in known.get(platform.slug, set()):
            echo(f"{platform.slug}: key {keys[1].key_id} already registered")
            continue
        echo(op.add_key(platform.slug, keys[1]))


def _tree_size(http: Http) -> int:
    return int(http.get_json("/api/v1/log")["checkpoint"]["tree_size"])


class Submitter:
    """Submits the demo in phases, counting per platform what was created."""

    def __init__(self, url: str, vkey: str, state: Path, batch_size: int, bar: Any) -> None:
        self.url, self.vkey, self.state, self.batch_size, self.bar = url, vkey, state, batch_size, bar
        self.created: Counter[str] = Counter()
        self.existing: Counter[str] = Counter()
        self.tree_size = 0

    def submit(self, http: Http, items: list[SignedItem]) -> None:
        if not items:
            return
        before = _tree_size(http)
        sink = io.StringIO()
        summary = submit_items(
            self.url,
            items,
            vkey=self.vkey,
            batch_size=self.batch_size,
            progress=self.bar.update,
            receipts=sink,
            state=self.state,
            warn=lambda m: click.echo("\n" + m, err=True),
        )
        # A record logged by this run sits at or after the size seen before it.
        for line in sink.getvalue().splitlines():
            receipt = json.loads(line)
            counter = self.created if receipt["leaf_index"] >= before else self.existing
            counter[receipt["platform"]] += 1
        self.tree_size = summary.tree_size


def _example_subject(demo: Demo) -> tuple[str, str] | None:
    """The politician with the most decisions on the first platform: a page worth opening."""
    names: Counter[tuple[str, str]] = Counter()
    for item in demo.items:
        rec = item.record
        account = rec.get("account", {})
        if rec["platform"] == PLATFORMS[0].slug and account.get("class") in ("legislator", "candidate"):
            names[(account["public_subject"]["display_name"], account["subject_key"])] += 1
    return names.most_common(1)[0][0] if names else None


def example_person(demo: Demo) -> tuple[str, str] | None:
    """The person with a Wikidata item on the most platforms (then the most
    decisions): the page that shows one person across platforms."""
    platforms: dict[tuple[str, str], set[str]] = {}
    decisions: Counter[tuple[str, str]] = Counter()
    for item in demo.items:
        rec = item.record
        subject = rec.get("account", {}).get("public_subject") or {}
        if rec["type"] == "decision" and subject.get("wikidata_qid"):
            who = (subject["display_name"], subject["wikidata_qid"])
            platforms.setdefault(who, set()).add(rec["platform"])
            decisions[who] += 1
    ranked = sorted(platforms, key=lambda who: (len(platforms[who]), decisions[who]), reverse=True)
    return ranked[0] if ranked else None


def dry_run(demo: Demo, out: Path) -> None:
    data = b"".join(item.to_bytes() + b"\n" for item in demo.items)
    if str(out) == "-":
        sys.stdout.buffer.write(data)
    else:
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    for slug, keys in demo.keys.items():
        for key in keys:
            click.echo(f"{slug}: key {key.key_id}, public key {base64.b64encode(key.public_key).decode()}", err=True)
    click.echo(f"wrote {len(demo.items)} signed records to {out}", err=True)


def _url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_base_url(value)
    except ClientError as e:
        raise click.BadParameter(str(e)) from None


@click.command(name="demo")
@click.option(
    "--url",
    default=default_url,
    show_default=f"http://$LEDGER_BIND, else {DEFAULT_URL}",
    callback=_url,
    help="The running ledger's base URL.",
)
@click.option("--seed", default=DEFAULT_SEED, show_default=True, help="Same seed, same records, byte for byte.")
@click.option(
    "--records",
    type=click.IntRange(min=MIN_RECORDS),
    default=3000,
    show_default=True,
    help="How many records: decisions, appeals and amendments.",
)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=500, show_default=True)
@click.option(
    "--keys-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=ROOT / "data" / "demo-keys",
    show_default="data/demo-keys",
    help="Where the demo platforms' private keys are written (mode 0600).",
)
@click.option(
    "--dry-run",
    "dry_run_out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write the signed items as NDJSON to this file ('-': stdout) instead of submitting them.",
)
def main(url: str, seed: str, records: int, batch_size: int, keys_dir: Path, dry_run_out: Path | None) -> None:
    """Fill a running ledger with a deterministic synthetic demo ledger.

    Registers the demo platforms (demo-chirp, demo-tubeview, demo-facespace)
    with the operator's command and submits signed decisions, appeals and
    amendments through the JSON API. Run with the server's LEDGER_*
    environment. Safe to repeat: nothing is appended twice.
    """
    start = time.monotonic()
    demo = generate(seed, records)
    click.echo(f"generated {len(demo.items)} records (seed {seed}) in {time.monotonic() - start:.1f} s", err=True)
    if dry_run_out is not None:
        dry_run(demo, dry_run_out)
        return
    try:
        _fill(url, demo, batch_size, keys_dir)
    except VerificationFailed as e:
        raise _fail(f"verification failed: {e}") from None
    except (LedgerError, OperatorError) as e:
        hint = ""
        if "different content" in str(e):
            hint = "\nthe log holds other demo records under these IDs: was it filled with another --records?"
        raise _fail(f"{e}{hint}") from None


def _fill(url: str, demo: Demo, batch_size: int, keys_dir: Path) -> None:
    op = Operator()
    notes: list[str] = []
    with Http(url, policy=RetryPolicy(attempts=2)) as http:
        try:
            served = http.get_json("/api/v1/log")["verifier_key"]
        except Unreachable:
            raise _fail(f"no ledger answers at {url}: start it first (make run), or pass its --url") from None
        vkey = op.vkey()
        if served != vkey:
            raise _fail(
                f"the server at {url} serves the log key {served}, but `flask ledger vkey` here gives {vkey}: "
                "run the demo with the server's LEDGER_* environment"
            )
        write_keys(demo, keys_dir)
        register(op, http, demo, lambda m: click.echo(m, err=True))
        with (
            tempfile.TemporaryDirectory() as tmp,
            click.progressbar(length=len(demo.items), label="submitting demo records", file=sys.stderr) as bar,
        ):
            sub = Submitter(url, vkey, Path(tmp) / "state.json", batch_size, bar)
            sub.submit(http, demo.items[: demo.rotation])
            rotate(op, http, demo, notes.append)
            sub.submit(http, demo.items[demo.rotation :])
            # Coverage statements last (demo/coverage.py): one platform under-logs
            # politicians' exemptions, another's statement is contradicted.
            sub.submit(http, signed_statements(demo, max(i.record["submitted_at"] for i in demo.items)))
    for note in notes:
        click.echo(note, err=True)
    _summary(url, demo, sub, keys_dir)


def _summary(url: str, demo: Demo, sub: Submitter, keys_dir: Path) -> None:
    for p in PLATFORMS:
        keys = ", ".join(k.key_id for k in demo.keys[p.slug])
        created, existing = sub.created[p.slug], sub.existing[p.slug]
        click.echo(
            f"{p.slug:15} {created + existing:5} records: {created:5} created, {existing:5} already logged "
            f"(keys {keys}{f', rotated {p.rotates_at}' if p.rotates_at else ''})"
        )
    click.echo(f"all verified in the log's tree of size {sub.tree_size}; private keys in {keys_dir}")
    click.echo(f"open {url}/")
    example = _example_subject(demo)
    if example:
        click.echo(f"for example, every decision about {example[0]}: {url}/subjects/{example[1]}")
    person = example_person(demo)
    if person:
        click.echo(f"one person on every platform, by Wikidata item, {person[0]}: {url}/people/{person[1]}")


if __name__ == "__main__":
    main()
