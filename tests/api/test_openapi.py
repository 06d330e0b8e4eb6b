"""The OpenAPI document and the API page.

The document is valid OpenAPI 3.1; it names every route of the app and no
other; its record schemas accept the documented examples and refuse near
misses; its patterns accept exactly what the parsers accept; and every real
answer, success or error, has a documented status, media type and headers,
and a body that matches its schema with no field missing or extra. The page
renders every operation without a CDN, a script or an inline style.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from marshmallow import ValidationError
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from api.openapi import DESCRIBED, HASH_PARAM, METHODS, RECORD_SCHEMAS, build_spec, new_spec
from api.params import Hash
from api.tiles import TILE_PATH
from keys.errors import InvalidInput
from keys.records import PlatformKey
from ledger.tlog.tile import parse_tile_path
from tests.recordkit import EXAMPLES, amendment, appeal, decision, example, sign

KEY = PlatformKey(bytes([11]) * 32)
SPEC_URI = "urn:moderation-ledger:openapi"
PREFIXES = ("/api/", "/checkpoint", "/tile/", "/healthz")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return build_spec()


def _closed(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with every object schema closed: the response schemas leave
    room for new fields, but today's answers must have exactly the documented ones."""
    out = copy.deepcopy(spec)
    for s in out["components"]["schemas"].values():
        if "properties" in s:
            s.setdefault("additionalProperties", False)
    return out


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator of ``schema``, whose ``$ref``s point into ``spec``."""
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        _absolute(schema), registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _absolute(node: Any) -> Any:
    """Point the local ``$ref``s of a schema taken out of the spec back into it."""
    if isinstance(node, dict):
        return {k: SPEC_URI + v if k == "$ref" and v.startswith("#") else _absolute(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute(v) for v in node]
    return node


def _component(spec: dict[str, Any], name: str) -> Draft202012Validator:
    return _validator(spec, {"$ref": f"#/components/schemas/{name}"})


def _errors(v: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(instance)]


def _resolve(spec: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in obj:
        _, _, section, name = obj["$ref"].split("/")
        return spec["components"][section][name]  # type: ignore[no-any-return]
    return obj


# The document itself.


def test_served_document_is_valid_openapi_3_1(client: FlaskClient, spec: dict[str, Any]) -> None:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    doc = r.json
    assert doc == json.loads(json.dumps(spec))
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == "1"
    assert "Verifying the log" in doc["info"]["description"]
    assert doc["servers"] == [{"url": "/"}]
    assert client.get("/api/v1/openapi.json").data == r.data


def test_validator_catches_a_broken_document(spec: dict[str, Any]) -> None:
    broken = copy.deepcopy(spec)
    del broken["paths"]["/api/v1/entries/{index}"]["get"]["parameters"]
    assert list(OpenAPIV31SpecValidator(broken).iter_errors())


def _shape(path: str) -> str:
    return re.sub(r"\{[^{}]+\}", "{}", path)


def _served(app: Flask) -> Iterator[tuple[Rule, str, str]]:
    """(rule, path shape, method) of every route of the API and the C2SP read paths."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static") or not rule.rule.startswith(PREFIXES):
            continue
        template = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for m in rule.methods or ():
            if m not in ("HEAD", "OPTIONS"):
                yield rule, _shape(template), m.lower()


def test_every_route_is_documented_and_nothing_else(app: Flask, spec: dict[str, Any]) -> None:
    routes = {(shape, method) for _, shape, method in _served(app)}
    documented = {(_shape(p), m) for p, item in spec["paths"].items() for m in item if m in METHODS}
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented operations the app does not serve"


def test_each_route_is_described_beside_its_view(app: Flask) -> None:
    """The module whose blueprint serves a route describes it in its own ``paths``."""
    _, ma = new_spec()
    described = {
        module.__name__: {(_shape(p), m) for p, item in module.paths(ma).items() for m in item if m in METHODS}
        for module in DESCRIBED
    }
    elsewhere = []
    for rule, shape, method in _served(app):
        module = app.blueprints[rule.endpoint.rpartition(".")[0]].import_name
        if (shape, method) not in described.get(module, set()):
            elsewhere.append(f"{method.upper()} {rule.rule} ({module})")
    assert elsewhere == [], "routes their own module's paths() does not describe"


def test_statuses_media_types_and_retry_after(spec: dict[str, Any]) -> None:
    submit = spec["paths"]["/api/v1/records"]["post"]["responses"]
    assert set(submit) == {"200", "201", "400", "409", "413", "415", "422", "429", "503"}
    assert set(spec["paths"]["/checkpoint"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert set(spec["paths"]["/tile/{path}"]["get"]["responses"]["200"]["content"]) == {"application/octet-stream"}
    ids = []
    for item in spec["paths"].values():
        for method, op in item.items():
            ids.append(op["operationId"])
            for status, resp in op["responses"].items():
                resp = _resolve(spec, resp)
                if status.startswith(("4", "5")):
                    assert list(resp["content"]) == ["application/problem+json"], (method, status)
                if status in ("429", "503"):
                    assert "Retry-After" in resp["headers"]
    assert len(ids) == len(set(ids))


# Schemas against the validators.


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_examples_match_their_record_schema(spec: dict[str, Any], path: Any) -> None:
    record = json.loads(path.read_text())
    for kind, cls in RECORD_SCHEMAS.items():
        errors = _errors(_component(spec, cls.__name__), record)
        assert (errors == []) == (kind == record["type"]), errors


def _near_misses() -> list[tuple[str, dict[str, Any]]]:
    def changed(name: str, fn: Any) -> dict[str, Any]:
        rec = copy.deepcopy(example(name))
        fn(rec)
        return rec

    legislator, appealed = "decision-legislator-removal", "appeal-reversed"
    return [
        ("unknown field", changed(legislator, lambda r: r.update(note="x"))),
        ("decision with refs", changed(legislator, lambda r: r.update(refs={"record_id": "x"}))),
        ("appeal without refs", changed(appealed, lambda r: r.pop("refs"))),
        ("offset time", changed(legislator, lambda r: r.update(submitted_at="2026-05-02T09:15:00+01:00"))),
        ("unknown class", changed(legislator, lambda r: r["account"].update({"class": "president"}))),
        ("GLOBAL with a country", changed(legislator, lambda r: r.update(territorial_scope=["GLOBAL", "DE"]))),
        ("repeated country", changed(legislator, lambda r: r.update(territorial_scope=["DE", "DE"]))),
        ("empty content types", changed(legislator, lambda r: r["content"].update(types=[]))),
        ("schema version 2", changed(legislator, lambda r: r.update(schema_version=2))),
        ("string boolean", changed(legislator, lambda r: r.update(violation_found="true"))),
        ("long record_id", changed(appealed, lambda r: r.update(record_id="a" * 129))),
    ]


@pytest.mark.parametrize("why,record", _near_misses(), ids=lambda x: x if isinstance(x, str) else "")
def test_near_misses_are_refused(spec: dict[str, Any], why: str, record: dict[str, Any]) -> None:
    item = {"record": record, "signature": {"key_id": "0" * 16, "alg": "ed25519", "value": "A" * 86 + "=="}}
    assert _errors(_component(spec, "SubmissionItem"), item), why


def test_request_body_is_an_item_or_a_batch(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/api/v1/records"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    v = _validator(spec, body)
    item = {
        "record": example("appeal-reversed"),
        "signature": {"key_id": "0" * 16, "alg": "ed25519", "value": "A" * 86 + "=="},
    }
    assert _errors(v, item) == []
    assert _errors(v, {"records": [item] * 1000}) == []
    assert _errors(v, {"records": [item] * 1001})
    assert _errors(v, {"records": []})
    assert _errors(v, {**item, "extra": 1})
    assert _errors(v, {"records": [item], "extra": 1})


def _accepts(parse: Any, value: str) -> bool:
    try:
        parse(value)
    except (InvalidInput, ValidationError):
        return False
    return True


@given(
    st.one_of(
        st.from_regex(r"\A(entries|[0-9]{1,3})/(x[0-9]{3}/){0,3}[0-9]{3}(\.p/[0-9]{1,4})?\Z"),
        st.text(alphabet="0123456789x/.pentris", max_size=24),
    )
)
def test_tile_path_pattern_is_the_parser(path: str) -> None:
    assert bool(re.fullmatch(TILE_PATH, path)) == _accepts(parse_tile_path, "tile/" + path)


@given(
    st.one_of(
        st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode()),
        st.binary(min_size=32, max_size=32).map(bytes.hex),
        st.from_regex(r"\A[0-9a-fA-F]{63,65}\Z"),
        st.from_regex(r"\A[A-Za-z0-9+/]{42,44}={0,2}\Z"),
    )
)
def test_hash_pattern_is_the_parser(value: str) -> None:
    assert bool(re.fullmatch(HASH_PARAM, value)) == _accepts(Hash().deserialize, value)


# Schemas against the answers.


class _Checker:
    """Check answers against the document, and remember which operations were seen."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.closed = _closed(spec)
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, method: str, template: str, resp: TestResponse, status: int) -> Any:
        assert resp.status_code == status, resp.get_data(as_text=True)
        self.seen.add((template, method))
        responses = self.spec["paths"][template][method]["responses"]
        assert str(status) in responses, f"{method} {template}: {status} is not documented"
        doc = _resolve(self.spec, responses[str(status)])
        media = resp.mimetype or ""
        assert media in doc["content"], f"{method} {template} {status}: {media}"
        for header in doc.get("headers", {}):
            assert header in resp.headers, f"{method} {template} {status}: no {header}"
        if not media.endswith("json"):
            return resp.data
        schema = doc["content"][media]["schema"]
        assert _errors(_validator(self.closed, schema), resp.json) == [], f"{method} {template} {status}"
        return resp.json


def test_answers_match_the_document(app: Flask, client: FlaskClient, spec: dict[str, Any]) -> None:
    # Tokens: 3 + 3 (the batch twice) + 1 (conflict) of 8; the forged record
    # spends none (api/ratelimit.py), so a submission of two is over.
    app.config.update(RATE_LIMIT_RECORDS_PER_SECOND=0.001, RATE_LIMIT_BURST=8)
    app.extensions["ledger"].log.registry.add_platform("example-social", "Example Social", KEY.public_key)
    check = _Checker(spec)

    def post(body: Any, status: int, raw: bytes | None = None, mimetype: str = "application/json") -> Any:
        data = raw if raw is not None else json.dumps(body).encode()
        return check(
            "post", "/api/v1/records", client.post("/api/v1/records", data=data, content_type=mimetype), status
        )

    dec = decision("dec-1")
    batch = {"records": [sign(dec, KEY), sign(appeal("apl-1", "dec-1"), KEY), sign(amendment("amd-1", "dec-1"), KEY)]}
    receipt = post(batch, 201)
    assert [r["status"] for r in post(batch, 200)["records"]] == ["existing"] * 3
    conflict = post(sign(decision("dec-1", severity="low"), KEY), 409)
    assert conflict["errors"][0]["existing"]["leaf_index"] == 1
    forged = sign(decision("dec-2"), KEY)
    forged["record"]["record_id"] = "dec-3"
    assert post(forged, 422)["errors"][0]["index"] == 0
    post(None, 415, raw=b"{}", mimetype="text/plain")
    post(None, 400, raw=b"{")
    post({"records": [{"record": {}, "signature": {}}]}, 400)
    post({"records": [sign(decision("dec-4"), KEY), sign(decision("dec-5"), KEY)]}, 429)
    app.config["MAX_CONTENT_LENGTH"] = 100
    post(batch, 413)

    def get(template: str, url: str, status: int) -> Any:
        return check("get", template, client.get(url), status)

    get("/checkpoint", "/checkpoint", 200)
    get("/api/v1/checkpoints/cosigned", "/api/v1/checkpoints/cosigned", 404)  # no witness configured
    get("/tile/{path}", "/tile/0/000.p/4", 200)
    get("/tile/{path}", "/tile/entries/000.p/4", 200)
    get("/tile/{path}", "/tile/0/001", 404)
    get("/tile/{path}", "/tile/0/x000/001", 400)
    get("/api/v1/log", "/api/v1/log", 200)
    get("/api/v1/entries/{index}", "/api/v1/entries/1", 200)
    get("/api/v1/entries/{index}", "/api/v1/entries/99", 404)
    leaf_hash = receipt["records"][0]["leaf_hash"]
    inclusion = "/api/v1/proofs/inclusion"
    get(inclusion, f"{inclusion}?leaf_index=1", 200)
    get(inclusion, f"{inclusion}?leaf_hash={leaf_hash.replace('+', '%2B')}&tree_size=4", 200)
    get(inclusion, f"{inclusion}?leaf_index=01", 400)
    get(inclusion, f"{inclusion}?leaf_index=1&tree_size=3", 404)
    consistency = "/api/v1/proofs/consistency"
    get(consistency, f"{consistency}?first=1", 200)
    get(consistency, f"{consistency}?first=4&second=1", 400)
    get(consistency, f"{consistency}?first=2", 404)
    get("/api/v1/records/{index}", "/api/v1/records/1", 200)
    assert get("/api/v1/records/{index}", "/api/v1/records/2", 200)["history"]["refers_to"]["record_id"] == "dec-1"
    get("/api/v1/records/{index}", "/api/v1/records/0", 404)
    permalink = "/api/v1/platforms/{slug}/records/{record_id}"
    page = get(permalink, receipt["records"][0]["permalink"], 200)
    assert page["history"]["superseded_by"]["record_id"] == "amd-1"
    get(permalink, "/api/v1/platforms/example-social/records/nope", 404)
    get("/api/v1/platforms", "/api/v1/platforms", 200)
    get("/api/v1/records", "/api/v1/records", 200)
    get("/api/v1/records", "/api/v1/records?limit=0", 400)
    subject = dec["account"]["subject_key"]
    get("/api/v1/subjects/{subject_key}", f"/api/v1/subjects/{subject}", 200)
    get("/api/v1/subjects/{subject_key}", "/api/v1/subjects/short", 400)
    get("/api/v1/export", "/api/v1/export?start=0&end=4", 200)
    get("/api/v1/export", "/api/v1/export?start=4&end=1", 400)
    get("/api/v1/export", "/api/v1/export?start=0&end=99", 404)
    get("/api/v1/export/bundles/{n}.{fmt}.gz", "/api/v1/export/bundles/0.ndjson.gz", 404)
    get("/api/v1/openapi.json", "/api/v1/openapi.json", 200)
    get("/api/v1/docs", "/api/v1/docs", 200)
    get("/healthz", "/healthz", 200)
    evenness = "/api/v1/stats/evenness"
    get(evenness, evenness, 200)
    get(evenness, f"{evenness}?tree_size=4&group=political_any", 200)
    get(evenness, f"{evenness}?metric=kindness", 400)
    get(evenness, f"{evenness}?tree_size=3", 404)

    every = {(p, m) for p, item in spec["paths"].items() for m in item if m in METHODS}
    assert every - check.seen == set(), "operations this test does not exercise"


# The page.


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_docs_page(client: FlaskClient, spec: dict[str, Any]) -> None:
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    assert "style-src 'self'" in r.headers["Content-Security-Policy"]
    page = _Page()
    page.feed(r.get_data(as_text=True))
    names = {tag for tag, _ in page.tags}
    assert not names & {"style", "script", "iframe"}
    for tag, attrs in page.tags:
        assert not any(a == "style" or a.startswith("on") for a in attrs), tag
        if tag == "th":
            assert attrs.get("scope") in ("col", "row")
        if tag in ("link", "a", "img") and (attrs.get("href") or attrs.get("src") or "").startswith(
            ("http:", "https:", "//")
        ):
            pytest.fail(f"the page loads {attrs} from elsewhere")
    text = "".join(page.text)
    for path, item in spec["paths"].items():
        assert path in text
        for op in item.values():
            assert op["summary"] in text
    assert ("a", {"href": "/api/v1/openapi.json"}) in page.tags
    sheets = [attrs["href"] for tag, attrs in page.tags if tag == "link" and attrs.get("rel") == "stylesheet"]
    assert sheets == ["/api/v1/static/docs.css"]
    css = client.get(sheets[0])
    css.close()  # a static file is sent from an open file
    assert css.status_code == 200
    assert css.mimetype == "text/css"


def test_docs_page_escapes_the_document(app: Flask, client: FlaskClient) -> None:
    client.get("/api/v1/docs")
    ctx = app.extensions["ledger_openapi_docs"]
    ctx["operations"][0]["summary"] = "<script>alert(1)</script>"
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
