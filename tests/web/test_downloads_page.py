"""Full dumps on SQLite and PostgreSQL: ``flask ledger dump`` writes files
that ``sha256sum -c`` accepts, that pandas and DuckDB read as they are, and
whose NDJSON recomputes the checkpoint's root; /downloads and /api/v1/dumps
list them and serve exactly those bytes, and nothing else of the folder."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from ledger.records.entries import canonical
from ledger.records.export import CSV_COLUMNS
from ledger.tlog import merkle
from ledger.tlog.verify import verify_checkpoint
from tests.api.test_feed import dataset as dataset
from tests.reference import ListReader


def _dump(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> Path:
    app.config["DUMPS_DIR"] = str(tmp_path / "dumps")
    res = runner.invoke(args=["ledger", "dump"])
    assert res.exit_code == 0, res.output
    size = app.extensions["ledger"].log.latest_size()
    folder = tmp_path / "dumps" / str(size)
    assert res.output.strip() == f"wrote {folder}"
    return folder


def test_dump_files_check_and_read_as_they_are(
    app: Flask, runner: FlaskCliRunner, dataset: list[dict[str, Any]], tmp_path: Path
) -> None:
    folder = _dump(app, runner, tmp_path)
    size = int(folder.name)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"records-{size}.csv", f"records-{size}.parquet", f"entries-{size}.ndjson", "checkpoint", "SHA256SUMS"]
    )
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == 4

    ids = [r["record_id"] for r in dataset]  # in log order
    frame = pd.read_csv(folder / f"records-{size}.csv", dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(CSV_COLUMNS)
    assert list(frame["record_id"]) == ids
    table = pd.read_parquet(folder / f"records-{size}.parquet")
    assert list(table["record_id"]) == ids
    assert table.drop(columns="index").equals(frame.drop(columns="index"))
    for reader, name in [("read_csv", "csv"), ("read_parquet", "parquet")]:
        got = duckdb.sql(f"SELECT record_id FROM {reader}('{folder}/records-{size}.{name}') ORDER BY index").fetchall()
        assert [r[0] for r in got] == ids

    # The NDJSON holds every entry: the tree it makes is the checkpoint's.
    log = app.extensions["ledger"].log
    cp = verify_checkpoint((folder / "checkpoint").read_bytes(), log.verifier)
    ref = ListReader()
    lines = (folder / f"entries-{size}.ndjson").read_bytes().splitlines()
    assert [json.loads(x)["index"] for x in lines] == list(range(size))
    for line in lines:
        obj = json.loads(line)
        del obj["index"], obj["leaf_hash"]
        ref.add(canonical(obj))
    assert merkle.tree_hash(size, ref) == cp.root
    # pandas and DuckDB read the NDJSON as it is too, registry entries beside records.
    entries = folder / f"entries-{size}.ndjson"
    assert list(pd.read_json(entries, lines=True)["index"]) == list(range(size))
    got = duckdb.sql(f"SELECT index FROM read_json_auto('{entries}') ORDER BY index").fetchall()
    assert [r[0] for r in got] == list(range(size))

    again = runner.invoke(args=["ledger", "dump"])
    assert again.output.strip() == f"already there: {folder}"


def test_page_and_listing_serve_the_dump(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, dataset: Any, tmp_path: Path
) -> None:
    empty = client.get("/downloads")
    assert empty.status_code == 200
    assert "No dump has been published yet" in empty.get_data(as_text=True)
    assert client.get("/api/v1/dumps").json == {"dumps": []}

    folder = _dump(app, runner, tmp_path)
    size = int(folder.name)
    listing = client.get("/api/v1/dumps").json["dumps"]
    assert [d["tree_size"] for d in listing] == [size]
    assert (
        base64.b64decode(listing[0]["root_hash"])
        == verify_checkpoint(listing[0]["signed_note"].encode(), app.extensions["ledger"].log.verifier).root
    )
    page = client.get("/downloads").get_data(as_text=True)
    for f in listing[0]["files"]:
        assert f'href="{f["url"]}"' in page
        assert f["sha256"] in page
        with client.get(f["url"]) as r:  # a file response: closed, or its file stays open
            assert r.status_code == 200
            assert r.data == (folder / f["name"]).read_bytes()
            assert f["bytes"] == len(r.data)
    assert {f["name"] for f in listing[0]["files"]} == {p.name for p in folder.iterdir()}
    with client.get(f"/downloads/{size}/records-{size}.csv") as csv:
        assert csv.mimetype == "text/csv"
        assert pd.read_csv(io.BytesIO(csv.data)).shape[0] == len(dataset)

    (folder / "secret.txt").write_text("not part of the dump")
    for url in [f"/downloads/{size}/secret.txt", f"/downloads/{size + 1}/checkpoint", f"/downloads/{size}/..%2Fx"]:
        assert client.get(url).status_code == 404, url


def test_footer_links_downloads_api_docs_and_log(client: FlaskClient) -> None:
    page = client.get("/about").get_data(as_text=True)
    footer = page[page.index('<footer class="site">') :]
    for href in ('href="/downloads"', 'href="/api/v1/docs"', 'href="/log"'):
        assert href in footer, href
