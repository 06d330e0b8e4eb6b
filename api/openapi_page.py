"""The page that reads the OpenAPI document: ``/api/v1/docs``, rendered on
the server from the document alone, so it needs no JavaScript. Pure."""

from __future__ import annotations

import json
from typing import Any

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _tok(text: str, kind: str = "text") -> dict[str, str]:
    return {"kind": kind, "text": text}


def _label(schema: dict[str, Any]) -> list[dict[str, str]]:
    """A short, human description of a schema, as tokens: text, code, or a link to a component."""
    if "$ref" in schema:
        return [_tok(schema["$ref"].rsplit("/", 1)[-1], "ref")]
    if "type" not in schema:
        for key in ("oneOf", "anyOf"):
            if key in schema:
                out: list[dict[str, str]] = []
                for i, sub in enumerate(schema[key]):
                    out += ([_tok(" or ")] if i else []) + _label(sub)
                return out
        if "const" in schema:
            return [_tok("the value "), _tok(_show(schema["const"]), "code")]
        return [_tok("any")]
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    out = []
    for i, t in enumerate(types):
        out += [_tok(" or ")] if i else []
        out += ([_tok("array of "), *_label(schema.get("items", {}))]) if t == "array" else [_tok(t)]
    if "format" in schema:
        out.append(_tok(f" ({schema['format']})"))
    if "const" in schema:
        out += [_tok(", always "), _tok(_show(schema["const"]), "code")]
    if "enum" in schema:
        values = schema["enum"]
        if len(values) <= 12:
            out.append(_tok(", one of "))
            for i, v in enumerate(values):
                out += ([_tok(", ")] if i else []) + [_tok(_show(v), "code")]
        else:
            out.append(_tok(f", one of {len(values)} values (docs/records.md lists them)"))
    if "pattern" in schema:
        out += [_tok(", matching "), _tok(schema["pattern"], "code")]
    for lo, hi, unit in (("minLength", "maxLength", "characters"), ("minItems", "maxItems", "items")):
        if lo in schema and hi in schema:
            out.append(_tok(f", {schema[lo]} to {schema[hi]} {unit}"))
        elif lo in schema:
            out.append(_tok(f", at least {schema[lo]} {unit}"))
        elif hi in schema:
            out.append(_tok(f", at most {schema[hi]} {unit}"))
    return out


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _resolve(spec: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in obj and obj["$ref"].startswith("#/components/"):
        _, _, section, name = obj["$ref"].split("/")
        return spec["components"][section][name]  # type: ignore[no-any-return]
    return obj


def _content(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"media_type": mt, "type": _label(m.get("schema", {}))} for mt, m in content.items()]


def _operation(spec: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    params = [
        {
            "name": p["name"],
            "in": p["in"],
            "required": p.get("required", False),
            "type": _label(p.get("schema", {})),
            "description": p.get("description", ""),
        }
        for p in (_resolve(spec, p) for p in op.get("parameters", []))
    ]
    body = op.get("requestBody")
    responses = []
    for status, r in op["responses"].items():
        r = _resolve(spec, r)
        responses.append(
            {
                "status": status,
                "description": r["description"],
                "content": _content(r.get("content", {})),
                "headers": list(r.get("headers", {})),
            }
        )
    return {
        "id": op.get("operationId", f"{method}-{path}"),
        "method": method.upper(),
        "path": path,
        "summary": op.get("summary", ""),
        "description": op.get("description", ""),
        "parameters": params,
        "body": None
        if body is None
        else {"required": body.get("required", False), "content": _content(body["content"])},
        "responses": responses,
    }


def docs_context(spec: dict[str, Any]) -> dict[str, Any]:
    """What the docs template shows: the spec, flattened for a page."""
    operations = [
        _operation(spec, path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    schemas = []
    for name, s in spec["components"]["schemas"].items():
        required = set(s.get("required", []))
        schemas.append(
            {
                "name": name,
                "description": s.get("description", ""),
                "properties": [
                    {
                        "name": prop,
                        "type": _label(ps),
                        "required": prop in required,
                        "description": ps.get("description", ""),
                    }
                    for prop, ps in s.get("properties", {}).items()
                ],
            }
        )
    return {
        "info": spec["info"],
        "paragraphs": spec["info"].get("description", "").split("\n\n"),
        "operations": operations,
        "schemas": schemas,
    }
