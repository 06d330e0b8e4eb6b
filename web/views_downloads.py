"""The downloads page: full dumps per checkpoint (ledger/dumps.py), and how
to download any feed query (``/api/v1/feed.csv`` and siblings).

Dumps are written by ``flask ledger dump`` into ``LEDGER_DUMPS_DIR``; this
module only lists and serves them. A file is served only if its dump's
``SHA256SUMS`` names it, so no other path under the folder can be reached.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, current_app, render_template, send_from_directory

from ledger.dumps import SUMS, list_dumps
from ledger.query import MAX_DOWNLOAD
from web import bp, current_log

MEDIA_TYPES = {
    ".csv": "text/csv; charset=utf-8; header=present",
    ".parquet": "application/vnd.apache.parquet",
    ".ndjson": "application/x-ndjson",
}
IMMUTABLE = "public, max-age=31536000, immutable"


def dumps_dir() -> Path:
    return Path(str(current_app.config["DUMPS_DIR"]))


@bp.get("/downloads")
def downloads() -> str:
    dumps = list_dumps(current_log(), dumps_dir())
    return render_template("downloads.html", dumps=dumps, max_download=MAX_DOWNLOAD, sums=SUMS)


@bp.get("/downloads/<int:size>/<name>")
def download_file(size: int, name: str) -> Response:
    dump = next((d for d in list_dumps(current_log(), dumps_dir()) if d.tree_size == size), None)
    if dump is None or name not in {f.name for f in dump.files}:
        abort(404)
    mimetype = next((m for ext, m in MEDIA_TYPES.items() if name.endswith(ext)), "text/plain; charset=utf-8")
    resp = send_from_directory(
        dumps_dir() / str(size), name, mimetype=mimetype, as_attachment=name.endswith(tuple(MEDIA_TYPES))
    )
    resp.headers["Cache-Control"] = IMMUTABLE
    return resp
