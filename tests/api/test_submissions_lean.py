"""``POST /api/v1/records`` answered before Flask (``LeanSubmissions``) gives
the very answer Flask's own route gives: status line, every header in
order, body bytes; for good submissions and for each kind of bad one, on
SQLite and PostgreSQL. Flask's route is reached by calling the layer's
``flask_wsgi`` (what it passes every other request to)."""

from __future__ import annotations

import io
import json
import secrets
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from werkzeug.test import EnvironBuilder, run_wsgi_app

from api import ratelimit, submissions
from api.submissions import LeanSubmissions
from app import create_app
from keys.keyfile import write_signer
from keys.note import Signer
from keys.records import PlatformKey
from ledger.log import Log
from tests.conftest import ORIGIN, PG_URL
from tests.recordkit import decision, sign

KEY = PlatformKey(bytes([7]) * 32)
ROGUE = PlatformKey(bytes([9]) * 32)
#: Every log appends at this time, so two logs given the same records sign the same checkpoints.
FIXED_MS = 4_000_000_000_000

Answer = tuple[str, list[tuple[str, str]], bytes]


def _call(wsgi: Any, body: bytes, content_type: str = "application/json", chunked: bool = False) -> Answer:
    builder = EnvironBuilder(path="/api/v1/records", method="POST", data=body, content_type=content_type)
    environ = builder.get_environ()
    if chunked:  # as gunicorn frames a chunked body: no length, the stream ends itself
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
    app_iter, status, headers = run_wsgi_app(wsgi, environ)
    try:
        data = b"".join(app_iter)
    finally:
        getattr(app_iter, "close", lambda: None)()
    return status, list(headers.items()), data


def _both(app: Flask, body: bytes, **kw: Any) -> tuple[Answer, Answer]:
    lean = app.wsgi_app
    assert isinstance(lean, LeanSubmissions)
    return _call(lean, body, **kw), _call(lean.flask_wsgi, body, **kw)


def _frozen(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Log:
    """The log of ``app`` appending at ``FIXED_MS``, its platform registered
    then, and requests checked a millisecond later."""
    log: Log = app.extensions["ledger"].log
    monkeypatch.setattr(log.sequencer, "_clock", lambda: FIXED_MS)
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    monkeypatch.setattr("api.submissions.time", types.SimpleNamespace(time_ns=lambda: (FIXED_MS + 1) * 1_000_000))
    return log


@pytest.fixture
def twin(db_url: str, signer: Signer, tmp_path: Path) -> Iterator[Flask]:
    """A second app like ``app`` (same key, same backend), on a database of
    its own, with a key file of its own (the server's sequencer is found by
    its key file's path: ledger/intake.py)."""
    key_file = tmp_path / "twin" / "log.key"
    write_signer(key_file, signer)
    schema = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'twin.sqlite3'}"
    else:
        assert PG_URL
        schema = f"test_{secrets.token_hex(6)}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = db_url.replace(db_url.split("search_path%3D", 1)[1], schema)
    config = {"TESTING": True, "DATABASE_URL": url, "KEY_FILE": str(key_file), "ORIGIN": ORIGIN}
    application = create_app(config | {"DERIVED_CHECK_SECONDS": 0})
    with application.app_context():
        application.extensions["ledger"].initialise()
    try:
        yield application
    finally:
        application.extensions["ledger"].close()
        if schema is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def test_the_layer_runs_the_hooks_flask_would(app: Flask) -> None:
    """What Flask runs around the view, the layer runs too: the app's
    before_request functions, and the headers its one after_request adds."""
    lean = app.wsgi_app
    assert isinstance(lean, LeanSubmissions)
    assert app.before_request_funcs == {None: list(lean.before)}
    (after,) = app.after_request_funcs[None]
    assert set(app.after_request_funcs) == {None}
    added = after(app.response_class())
    assert [h for h in added.headers.items() if h[0] != "Content-Type"] == [*lean.headers]
    for hooks in (app.url_value_preprocessors, app.teardown_request_funcs):
        assert not any(hooks.get(scope) for scope in (None, "submissions")), hooks
    assert not app.teardown_appcontext_funcs


def test_good_submissions_are_answered_alike(app: Flask, twin: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same records, sent to two logs alike through each path, come back
    byte for byte the same: created (201), a batch, and again (200)."""
    _frozen(app, monkeypatch), _frozen(twin, monkeypatch)
    one = json.dumps(sign(decision("dec-lean-1"), KEY)).encode()
    batch = json.dumps({"records": [sign(decision(f"dec-lean-b{i}"), KEY) for i in range(3)]}).encode()
    for body, status in [(one, "201 CREATED"), (batch, "201 CREATED"), (one, "200 OK"), (batch, "200 OK")]:
        lean = _call(app.wsgi_app, body)
        flask = _call(twin.wsgi_app.flask_wsgi, body)  # type: ignore[attr-defined]
        assert lean == flask
        assert lean[0] == status
        assert ("Content-Length", str(len(lean[2]))) in lean[1]
    # And on one log, the two paths agree on a record already logged.
    assert _both(app, one)[0] == _both(app, one)[1]


def _bad_bodies() -> list[tuple[str, bytes, dict[str, Any]]]:
    good = sign(decision("dec-bad"), KEY)
    forged = sign(decision("dec-bad"), KEY)
    forged["signature"]["value"] = sign(decision("dec-bad"), ROGUE)["signature"]["value"]
    return [
        ("malformed JSON", b"{", {}),
        ("duplicate key", b'{"records": [], "records": []}', {}),
        ("not UTF-8", b"\xff\xfe", {}),
        ("wrong shape", b"[1, 2]", {}),
        ("no items", b'{"records": []}', {}),
        ("not JSON", b"{}", {"content_type": "text/plain"}),
        ("type with parameters", b"{", {"content_type": "application/json; charset=utf-8"}),
        ("type in capitals", b"{", {"content_type": "Application/JSON"}),
        ("no type", b"{", {"content_type": ""}),
        ("unknown field", json.dumps(sign(decision("dec-bad") | {"extra": 1}, KEY)).encode(), {}),
        ("forged signature", json.dumps(forged).encode(), {}),
        ("unknown platform", json.dumps(sign(decision("dec-bad", platform="nobody"), KEY)).encode(), {}),
        ("unknown key", json.dumps(sign(decision("dec-bad"), ROGUE)).encode(), {}),
        ("bad signature object", json.dumps(good | {"signature": {"alg": "rsa"}}).encode(), {}),
        ("chunked, malformed", b"{", {"chunked": True}),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _bad_bodies()])
def test_bad_submissions_are_answered_alike(app: Flask, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _frozen(app, monkeypatch)
    size = log.latest_size()
    body, kw = next((b, k) for name, b, k in _bad_bodies() if name == case)
    lean, flask = _both(app, body, **kw)
    assert lean == flask
    assert lean[0][:3] in ("400", "415", "422"), lean
    assert ("Content-Type", "application/problem+json") in lean[1]
    assert log.latest_size() == size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_bodies_are_answered_alike(app: Flask, chunked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _frozen(app, monkeypatch)
    size = log.latest_size()
    body = json.dumps(sign(decision("dec-big"), KEY)).encode()
    app.config["MAX_CONTENT_LENGTH"] = len(body) - 1
    lean, flask = _both(app, body, chunked=chunked)
    assert lean == flask
    assert lean[0] == "413 REQUEST ENTITY TOO LARGE"
    assert json.loads(lean[2])["detail"] == f"the request body exceeds the limit of {len(body) - 1} bytes"
    app.config["MAX_CONTENT_LENGTH"] = len(body)
    assert _call(app.wsgi_app, body, chunked=chunked)[0] == "201 CREATED"
    assert log.latest_size() == size + 1


def test_conflicts_and_rate_limits_are_answered_alike(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    # The limiter's clock stands still, so both paths compute the same wait.
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=lambda: 1000.0))
    app.config.update(RATE_LIMIT_RECORDS_PER_SECOND=0.001, RATE_LIMIT_BURST=3)
    log = _frozen(app, monkeypatch)
    size = log.latest_size()
    assert _call(app.wsgi_app, json.dumps(sign(decision("dec-c"), KEY)).encode())[0] == "201 CREATED"
    changed = json.dumps(sign(decision("dec-c", severity="low"), KEY)).encode()
    lean, flask = _both(app, changed)  # each spends a token: the signature verified
    assert lean == flask
    assert lean[0] == "409 CONFLICT"
    lean, flask = _both(app, json.dumps(sign(decision("dec-r1"), KEY)).encode())
    assert lean == flask
    assert lean[0] == "429 TOO MANY REQUESTS"
    assert ("Retry-After", "1000") in lean[1]
    assert log.latest_size() == size + 1


def test_a_bug_is_answered_alike(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error: raised to the caller while testing (Flask's
    PROPAGATE_EXCEPTIONS), a 500 problem otherwise, by either path."""
    _frozen(app, monkeypatch)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("api.submissions.verify_items", broken)
    body = json.dumps(sign(decision("dec-bug"), KEY)).encode()
    for wsgi in (app.wsgi_app, app.wsgi_app.flask_wsgi):  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="a bug"):
            _call(wsgi, body)
    app.testing = False
    lean, flask = _both(app, body)
    assert lean == flask
    assert lean[0] == "500 INTERNAL SERVER ERROR"
    assert ("Content-Type", "application/problem+json") in lean[1]


def test_other_requests_pass_through(app: Flask) -> None:
    """Only POST to the exact path is the layer's: the feed's GET, a trailing
    slash and other methods are Flask's, answered as before."""
    client = app.test_client()
    assert client.get("/api/v1/records").status_code == 200
    assert client.post("/api/v1/records/", data=b"{}", content_type="application/json").status_code == 404
    assert client.put("/api/v1/records", data=b"{}", content_type="application/json").status_code == 405
    assert client.open("/api/v1/records", method="OPTIONS").status_code == 200


_ANSWER_STRINGS = st.text(st.one_of(st.sampled_from('\x00\x1f\t\n"\\/\x7f\x80\xe9\u2014\U0001f600 ~'), st.characters()))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(("platform", "record_id", "leaf_index", "inclusion_path")),
            st.one_of(_ANSWER_STRINGS, st.integers(0, 2**63 - 1), st.lists(_ANSWER_STRINGS, max_size=3)),
        ),
        max_size=4,
    )
)
def test_the_answers_records_by_orjson_are_the_encoders(out: list[dict[str, Any]]) -> None:
    """The answer's records are written with orjson only where that gives
    the json module's encoder's bytes: any string, any key order."""
    want = submissions.ENCODER.encode(out).encode()
    assert submissions.records_json(out) == want
    assert json.loads(want) == out


def test_the_answers_records_of_the_ascii_kind_take_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    out = [{"platform": "p", "record_id": 'r.1:"\\', "leaf_index": 7, "inclusion_path": ["ab+/=", "\n\t\x01"]}]
    monkeypatch.setattr(submissions, "ENCODER", None)  # the fallback is not taken
    assert json.loads(submissions.records_json(out)) == out
