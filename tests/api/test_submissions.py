"""POST /api/v1/records on SQLite and PostgreSQL: accepted records are in the
log with verifiable proofs; every kind of bad submission is refused with
its own message and leaves the log exactly as it was."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from api.params import flatten
from api.submissions import SignatureSchema, signature_errors
from keys.errors import InvalidInput
from keys.records import RECORD_CONTEXT, PlatformKey, verify_signature
from ledger.log import Log
from ledger.records.entries import canonical, entry_bytes, parse_entry
from ledger.tlog import merkle, verify
from tests.checklog import check_log
from tests.recordkit import amendment, appeal, decision, sign

KEY = PlatformKey(bytes([7]) * 32)
OTHER = PlatformKey(bytes([8]) * 32)
ROGUE = PlatformKey(bytes([9]) * 32)


def _log(app: Flask) -> Log:
    return app.extensions["ledger"].log  # type: ignore[no-any-return]


@pytest.fixture
def platforms(app: Flask) -> Log:
    log = _log(app)
    log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    log.registry.add_platform("other-video", "Other Video", OTHER.public_key)
    return log


def _size(log: Log) -> int:
    with log.read() as s:
        return log.latest(s).size


def post(client: FlaskClient, body: Any, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    return client.post("/api/v1/records", data=data, content_type="application/json")


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def check_receipt(log: Log, item: dict[str, Any], result: dict[str, Any], checkpoint: dict[str, Any]) -> None:
    """Verify a returned record the way a platform would: rebuild the entry,
    hash it, walk the proof to the signed checkpoint."""
    cp = verify.verify_checkpoint(checkpoint["signed_note"].encode(), log.verifier)
    entry = entry_bytes(_ms(result["logged_at"]), "record", canonical(item["record"]), item["signature"])
    assert base64.b64decode(result["leaf_hash"]) == merkle.record_hash(entry)
    verify.verify_entry(entry, result["leaf_index"], [base64.b64decode(h) for h in result["inclusion_path"]], cp)


def test_submit_one_record(client: FlaskClient, platforms: Log) -> None:
    item = sign(decision("dec-1"), KEY)
    r = post(client, item)
    assert r.status_code == 201, r.json
    body = r.json
    (res,) = body["records"]
    assert res["status"] == "created"
    assert res["permalink"] == "/api/v1/platforms/example-social/records/dec-1"
    check_receipt(platforms, item, res, body["checkpoint"])
    # The permalink serves the record, its entry and a proof; the platform's
    # signature verifies from the log entry alone.
    got = client.get(res["permalink"]).json
    assert got["record"] == item["record"]
    entry = parse_entry(base64.b64decode(got["entry"]))
    verify_signature(KEY.public_key, RECORD_CONTEXT, canonical(entry.body), base64.b64decode(entry.signature["value"]))
    assert client.get(f"/api/v1/records/{res['leaf_index']}").json == got
    check_log(platforms)


def test_batch_and_idempotent_resubmission(client: FlaskClient, platforms: Log) -> None:
    items = [sign(decision(f"dec-{i}"), KEY) for i in range(50)]
    r = post(client, {"records": items})
    assert r.status_code == 201
    results = r.json["records"]
    assert [x["leaf_index"] for x in results] == list(range(results[0]["leaf_index"], results[0]["leaf_index"] + 50))
    for item, res in zip(items, results, strict=True):
        check_receipt(platforms, item, res, r.json["checkpoint"])
    size = _size(platforms)
    again = post(client, {"records": items})
    assert again.status_code == 200
    assert [x["status"] for x in again.json["records"]] == ["existing"] * 50
    assert [x["leaf_index"] for x in again.json["records"]] == [x["leaf_index"] for x in results]
    assert _size(platforms) == size
    # A resumed upload: half old, half new.
    more = items[25:] + [sign(decision(f"dec-{i}"), KEY) for i in range(50, 60)]
    r = post(client, {"records": more})
    assert r.status_code == 201
    assert [x["status"] for x in r.json["records"]] == ["existing"] * 25 + ["created"] * 10
    assert _size(platforms) == size + 10
    check_log(platforms)


def test_appeal_and_amendment_chain(client: FlaskClient, platforms: Log) -> None:
    items = [sign(decision("dec-a"), KEY), sign(appeal("apl-1", "dec-a"), KEY)]
    assert post(client, {"records": items}).status_code == 201
    assert post(client, sign(amendment("amd-a", "dec-a"), KEY)).status_code == 201
    got = client.get("/api/v1/platforms/example-social/records/dec-a").json
    assert [a["record_id"] for a in got["history"]["appeals"]] == ["apl-1"]
    assert got["history"]["superseded_by"]["record_id"] == "amd-a"
    amd = client.get("/api/v1/platforms/example-social/records/amd-a").json
    assert amd["history"]["refers_to"]["record_id"] == "dec-a"
    check_log(platforms)


def _forged(item: dict[str, Any]) -> dict[str, Any]:
    """Signed by a key nobody registered, claiming the platform's key ID."""
    bad = sign(item["record"], ROGUE)
    bad["signature"]["key_id"] = KEY.key_id
    return bad


def _mutate(**changes: Any) -> dict[str, Any]:
    rec = decision("dec-bad")
    for path, value in changes.items():
        node = rec
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return rec


ORDINARY = decision("dec-9", name="decision-ordinary-user")
THREAT = decision("dec-10", name="decision-threat-election-worker")

REJECTIONS: list[tuple[str, Any, int, str, str]] = [
    # (case, items, status, path, message fragment)
    ("forged signature", [_forged(sign(decision("dec-x"), KEY))], 422, "signature/value", "does not verify"),
    (
        "another platform's key",
        [sign(decision("dec-x"), OTHER) | {"signature": OTHER.sign(RECORD_CONTEXT, canonical(decision("dec-x")))}],
        422,
        "signature/key_id",
        "belongs to platform 'other-video'",
    ),
    ("unknown key", [sign(decision("dec-x"), ROGUE)], 422, "signature/key_id", "unknown key"),
    ("unknown platform", [sign(decision("dec-x", platform="nobody"), KEY)], 422, "record/platform", "unknown platform"),
    ("unknown field", [sign(decision("dec-x") | {"extra": 1}, KEY)], 400, "record/extra", ""),
    ("bad enum", [sign(_mutate(action="obliterate"), KEY)], 400, "record/action", ""),
    ("disordered times", [sign(_mutate(decided_at="2026-04-15T06:00:00Z"), KEY)], 400, "record/decided_at", ""),
    (
        "public_subject on ordinary user",
        [sign(ORDINARY | {"account": ORDINARY["account"] | {"public_subject": {"display_name": "A Person"}}}, KEY)],
        400,
        "record/account/public_subject",
        "",
    ),
    ("statement on ordinary user", [sign(ORDINARY | {"statement": "why"}, KEY)], 400, "record/statement", ""),
    (
        "named election worker as target",
        [sign(THREAT | {"target": {"class": "election_worker", "public_subject": {"display_name": "A Person"}}}, KEY)],
        400,
        "record/target/public_subject",
        "forbidden unless the target is of a public class",
    ),
    (
        "abuse rule without target",
        [sign({k: v for k, v in THREAT.items() if k != "target"}, KEY)],
        400,
        "record/target",
        "required when rule.abuse is set",
    ),
    (
        "reporter named",
        [sign(THREAT | {"reporter_class": "Jane Doe"}, KEY)],
        400,
        "record/reporter_class",
        "must be one of",
    ),
    (
        "amendment of a missing record",
        [sign(amendment("amd-x", "dec-missing"), KEY)],
        422,
        "record/refs/record_id",
        "no record 'dec-missing'",
    ),
    ("oversize record", [sign(_mutate(statement="x" * 5001), KEY)], 400, "record/statement", ""),
    (
        "bad signature encoding",
        [sign(decision("dec-x"), KEY) | {"signature": {"key_id": KEY.key_id, "alg": "ed25519", "value": "AAAA"}}],
        400,
        "signature/value",
        "64-byte",
    ),
    (
        "batch with one bad item among good",
        [sign(decision("dec-g1"), KEY), sign(_mutate(severity="apocalyptic"), KEY), sign(decision("dec-g2"), KEY)],
        400,
        "record/severity",
        "",
    ),
    # Ordinary users: fields that could name them take fixed forms.
    (
        "ordinary user's subject_key not an HMAC",
        [sign(ORDINARY | {"account": ORDINARY["account"] | {"subject_key": "jane-doe-berlin-1990"}}, KEY)],
        400,
        "record/account/subject_key",
        "64 lower-case hex digits",
    ),
    (
        "ordinary user's record_id spells a name",
        [sign(ORDINARY | {"record_id": "jane.doe"}, KEY)],
        400,
        "record/record_id",
        "",
    ),
    (
        "ordinary user's legal_reference in prose",
        [sign(ORDINARY | {"decision_ground": "both", "legal_reference": "DSA Art. 16, reported by Jane Doe"}, KEY)],
        400,
        "record/legal_reference",
        "short legal citation",
    ),
    (
        "ordinary user's rule url with a query",
        [sign(ORDINARY | {"rule": ORDINARY["rule"] | {"url": "https://video.example/rules?user=jane"}}, KEY)],
        400,
        "record/rule/url",
        "no query string",
    ),
    ("appeal record_id spells a name", [sign(appeal("apl-jane.doe", "dec-x"), KEY)], 400, "record/record_id", ""),
    (
        "duplicate record_id in one batch",
        [sign(decision("dec-d"), KEY), sign(decision("dec-d", severity="low"), KEY)],
        422,
        "record/record_id",
        "repeats item 0",
    ),
]


@pytest.mark.parametrize("case,items,status,path,fragment", REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejections_change_nothing(
    client: FlaskClient, platforms: Log, case: str, items: Any, status: int, path: str, fragment: str
) -> None:
    size = _size(platforms)
    r = post(client, {"records": items})
    assert r.status_code == status, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    problem = r.json
    assert problem["status"] == status
    assert "nothing was appended" in problem["detail"]
    assert any(e["path"] == path and fragment in e["message"] for e in problem["errors"]), problem["errors"]
    assert _size(platforms) == size
    check_log(platforms)


# U+0000 is the reason for the check: PostgreSQL cannot store it (in text or
# jsonb), so before the check this record was a 201 on SQLite and a 503 on
# PostgreSQL. Each string sits somewhere else: top level, nested, a field
# name, an array item, a record_id.
CONTROL_CHARACTERS = [
    ("statement", {"statement": "before\x00after"}, "record/statement", "U+0000 at character 7"),
    (
        "nested",
        {"account": decision("x")["account"] | {"public_subject": {"display_name": "A\x00"}}},
        "record/account/public_subject/display_name",
        "U+0000 at character 2",
    ),
    ("field name", {"stat\x00ement": "why"}, "record/stat\x00ement", "the field name must not contain"),
    ("array item", {"keywords": ["hate_speech\x00"]}, "record/keywords/0", "U+0000"),
    ("carriage return", {"statement": "one\r\ntwo"}, "record/statement", "U+000D"),
    ("escape", {"statement": "\x1b[31mred"}, "record/statement", "U+001B at character 1"),
    ("delete", {"statement": "x\x7f"}, "record/statement", "U+007F"),
    ("C1 control", {"statement": "x\x9b"}, "record/statement", "U+009B"),
    ("lone surrogate", {"statement": "x\ud800"}, "record/statement", "lone surrogate"),
]


@pytest.mark.parametrize("case,changes,path,fragment", CONTROL_CHARACTERS, ids=[c[0] for c in CONTROL_CHARACTERS])
def test_control_characters_are_refused_alike(
    client: FlaskClient, platforms: Log, case: str, changes: dict[str, Any], path: str, fragment: str
) -> None:
    """Both databases give the same 400 naming the path, before either sees the record."""
    clean = decision("dec-ctl")
    try:
        item = sign(clean | changes, KEY)  # validly signed: only the check stops it
    except InvalidInput:  # a lone surrogate has no UTF-8 form to sign
        item = sign(clean, KEY) | {"record": clean | changes}
    size = _size(platforms)
    r = post(client, item)
    assert r.status_code == 400, r.json
    assert r.headers["Content-Type"] == "application/problem+json"
    [error] = r.json["errors"]
    assert (error["index"], error["path"]) == (0, path)
    assert fragment in error["message"]
    assert "nothing was appended" in r.json["detail"]
    assert _size(platforms) == size
    assert client.get("/api/v1/platforms/example-social/records/dec-ctl").status_code == 404
    # The same record without the character is logged: the character alone was refused.
    assert post(client, sign(clean, KEY)).status_code == 201
    check_log(platforms)


def test_tab_and_line_feed_are_kept(client: FlaskClient, platforms: Log) -> None:
    """The two control characters text needs are stored and served back unchanged by both databases."""
    record = decision("dec-tab", statement="first line\n\tindented second line")
    assert post(client, sign(record, KEY)).status_code == 201
    got = client.get("/api/v1/platforms/example-social/records/dec-tab").json
    assert got["record"]["statement"] == "first line\n\tindented second line"
    check_log(platforms)


def test_revoked_key_is_refused(client: FlaskClient, platforms: Log) -> None:
    assert post(client, sign(decision("dec-before"), KEY)).status_code == 201
    platforms.registry.revoke_key(KEY.key_id, 0, "compromised")
    size = _size(platforms)
    r = post(client, sign(decision("dec-after"), KEY))
    assert r.status_code == 422
    assert "revoked from 1970-01-01T00:00:00.000Z: compromised" in r.json["errors"][0]["message"]
    assert _size(platforms) == size
    # Records logged before stay, and their page says the key was revoked.
    got = client.get("/api/v1/platforms/example-social/records/dec-before").json
    assert got["key"]["revocation_reason"] == "compromised"


def test_a_revocation_by_another_process_is_enforced_at_once(client: FlaskClient, platforms: Log) -> None:
    """The request threads' key cache may still hold the key as valid; the
    sequencer reads its state under the lock and refuses."""
    assert post(client, sign(decision("dec-cached"), KEY)).status_code == 201  # the key is now cached
    other = Log(platforms.engine, platforms.signer)  # the operator's CLI, another process
    other.registry.revoke_key(KEY.key_id, 0, "compromised")
    size = _size(platforms)
    r = post(client, sign(decision("dec-after-elsewhere"), KEY))
    assert r.status_code == 422
    assert "revoked from 1970-01-01T00:00:00.000Z: compromised" in r.json["errors"][0]["message"]
    assert _size(platforms) == size


def test_conflicting_resubmission_is_409(client: FlaskClient, platforms: Log) -> None:
    first = post(client, sign(decision("dec-c"), KEY)).json["records"][0]
    size = _size(platforms)
    changed = decision("dec-c", severity="low")
    r = post(client, {"records": [sign(decision("dec-new"), KEY), sign(changed, KEY)]})
    assert r.status_code == 409
    (err,) = r.json["errors"]
    assert err["index"] == 1
    assert err["existing"] == {"leaf_index": first["leaf_index"], "permalink": first["permalink"]}
    assert "amendment" in err["message"]
    assert _size(platforms) == size  # dec-new was not appended either


@pytest.mark.parametrize(
    "raw,fragment",
    [
        (b"{", "malformed JSON"),
        (b'{"records": [], "records": []}', "duplicate key"),
        (b"\xff\xfe", "UTF-8"),
        (b"[1, 2]", "the body must be"),
        (b'{"records": []}', "1 to 1000"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
        (b'{"records": [NaN]}', "not JSON"),
    ],
)
def test_malformed_bodies(client: FlaskClient, platforms: Log, raw: bytes, fragment: str) -> None:
    size = _size(platforms)
    r = post(client, None, raw=raw)
    assert r.status_code == 400
    assert fragment in r.json["detail"] + json.dumps(r.json.get("errors", []))
    assert _size(platforms) == size


def test_too_many_items_and_too_large_bodies(client: FlaskClient, app: Flask, platforms: Log) -> None:
    item = sign(decision("dec-many"), KEY)
    r = post(client, {"records": [item] * 1001})
    assert r.status_code == 400
    app.config["MAX_CONTENT_LENGTH"] = 1000
    r = post(client, {"records": [item]})
    assert r.status_code == 413
    assert "1000 bytes" in r.json["detail"]
    r = client.post("/api/v1/records", data=b"{}", content_type="text/plain")
    assert r.status_code == 415


#: Tokens per second in the rate-limit tests: one token in about 17 minutes,
#: so none comes back while a test runs, however busy the machine (at 1/s a
#: second between two posts on a loaded machine refilled a token and turned
#: an expected 429 into a 201).
SLOW_REFILL = 0.001


def test_rate_limit(client: FlaskClient, app: Flask, platforms: Log) -> None:
    app.config.update(RATE_LIMIT_RECORDS_PER_SECOND=SLOW_REFILL, RATE_LIMIT_BURST=3)
    items = [sign(decision(f"dec-r{i}"), KEY) for i in range(3)]
    assert post(client, {"records": items}).status_code == 201
    r = post(client, sign(decision("dec-r9"), KEY))
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert "rate limit" in r.json["detail"]


def test_badly_signed_records_spend_no_tokens(client: FlaskClient, app: Flask, platforms: Log) -> None:
    """Anyone can name a platform in a record; only its key can sign one. A
    flood of records naming example-social under a signature that does not
    verify leaves example-social's own quota whole, and its valid records are
    still limited."""
    app.config.update(RATE_LIMIT_RECORDS_PER_SECOND=SLOW_REFILL, RATE_LIMIT_BURST=3)
    size = _size(platforms)
    forged = []
    for i in range(3):
        item = sign(decision(f"dec-f{i}"), KEY)
        item["signature"]["value"] = sign(decision(f"dec-f{i}"), ROGUE)["signature"]["value"]
        forged.append(item)
    for _ in range(20):
        r = post(client, {"records": forged})
        assert r.status_code == 422, r.json
        assert {e["path"] for e in r.json["errors"]} == {"signature/value"}
    items = [sign(decision(f"dec-v{i}"), KEY) for i in range(3)]
    assert post(client, {"records": items}).status_code == 201
    r = post(client, sign(decision("dec-v9"), KEY))
    assert r.status_code == 429
    # A platform over its limit is refused before its signatures are
    # checked, so a forged record naming it is refused the same way.
    assert post(client, forged[0]).status_code == 429
    assert _size(platforms) == size + 3


def test_a_refused_request_spends_no_platforms_tokens(client: FlaskClient, app: Flask, platforms: Log) -> None:
    """A request naming two platforms, one of them over its limit, is
    refused whole and spends neither platform's tokens."""
    app.config.update(RATE_LIMIT_RECORDS_PER_SECOND=SLOW_REFILL, RATE_LIMIT_BURST=3)
    assert (
        post(client, {"records": [sign(decision(f"dec-o{i}", "other-video"), OTHER) for i in range(3)]}).status_code
        == 201
    )
    mixed = [sign(decision("dec-m0"), KEY), sign(decision("dec-m1", "other-video"), OTHER)]
    assert post(client, {"records": mixed}).status_code == 429
    items = [sign(decision(f"dec-e{i}"), KEY) for i in range(3)]
    assert post(client, {"records": items}).status_code == 201


def test_signature_is_over_the_json_as_received(client: FlaskClient, platforms: Log) -> None:
    """Whitespace and key order in the body do not matter (RFC 8785), but a
    single changed value does."""
    item = sign(decision("dec-ws"), KEY)
    reordered = {"signature": item["signature"], "record": dict(reversed(list(item["record"].items())))}
    raw = json.dumps(reordered, indent=3, ensure_ascii=True).encode()
    assert post(client, None, raw=raw).status_code == 201
    tampered = copy.deepcopy(item)
    tampered["record"]["record_id"] = "dec-ws2"
    assert post(client, tampered).status_code == 422


_GOOD_SIGNATURE = {"key_id": "0123456789abcdef", "alg": "ed25519", "value": "A" * 86 + "=="}
_SIGNATURE_VARIANTS: list[object] = [
    _GOOD_SIGNATURE,
    {**_GOOD_SIGNATURE, "key_id": "0123456789abcdef\n"},  # "$" matches before a final newline
    {**_GOOD_SIGNATURE, "value": "A" * 86 + "==\n"},
    {**_GOOD_SIGNATURE, "key_id": "0123456789ABCDEF"},
    {**_GOOD_SIGNATURE, "key_id": 12345},
    {**_GOOD_SIGNATURE, "alg": "Ed25519"},
    {**_GOOD_SIGNATURE, "alg": None},
    {**_GOOD_SIGNATURE, "value": "A" * 85 + "=="},
    {**_GOOD_SIGNATURE, "value": "A" * 86 + "=A"},
    {**_GOOD_SIGNATURE, "extra": "x"},
    {k: v for k, v in _GOOD_SIGNATURE.items() if k != "alg"},
    {"key_id": "0123456789abcdef", "alg": "ed25519", "valu": "A" * 86 + "=="},
    [],
    "signature",
    None,
    {},
]


# Near-misses of each field: the good value with characters added, dropped or changed.
_FIELD = st.one_of(
    st.sampled_from(["0123456789abcdef", "ed25519", "A" * 86 + "==", "A" * 86 + "=="]),
    st.text(alphabet="0123456789abcdefABCDEF+/=\n ed", min_size=0, max_size=90),
    st.builds(lambda n, tail: "A" * n + tail, st.integers(80, 90), st.sampled_from(["==", "=", "", "==\n", "A="])),
    st.integers(),
    st.none(),
)
_SIGNATURES = st.one_of(
    st.dictionaries(st.sampled_from(["key_id", "alg", "value", "extra"]), _FIELD, max_size=4),
    st.fixed_dictionaries({"key_id": _FIELD, "alg": _FIELD, "value": _FIELD}),
)


@settings(max_examples=300, deadline=None)
@given(_SIGNATURES)
def test_signature_fast_path_agrees_with_the_schema_on_generated(signature: dict[str, object]) -> None:
    test_signature_fast_path_agrees_with_the_schema(signature)


@pytest.mark.parametrize("signature", _SIGNATURE_VARIANTS)
def test_signature_fast_path_agrees_with_the_schema(signature: object) -> None:
    """The fast path of ``signature_errors`` answers exactly as SignatureSchema."""
    try:
        SignatureSchema().load(signature)  # type: ignore[arg-type]
        expected: list[dict[str, str]] = []
    except ValidationError as e:
        expected = [
            {"path": f"signature/{x['path']}".rstrip("/"), "message": x["message"]} for x in flatten(e.messages)
        ]
    assert signature_errors(signature) == expected
    if signature is _GOOD_SIGNATURE:
        assert expected == []
