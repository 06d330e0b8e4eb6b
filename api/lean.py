"""The hottest read paths answered before Flask: ``GET /checkpoint``,
``GET /tile/...`` (hash tiles and entry bundles) and ``GET
/api/v1/proofs/inclusion?leaf_index=N`` or ``?leaf_hash=H``.

A profile of a kept proof by index found Flask's request and response
machinery (the request context, URL matching, the request and response
objects, header objects) more than half of the request's CPU in the app
(docs/performance.md). :class:`LeanReads`, one WSGI layer in front of Flask
(as ``LeanSubmissions`` is for ``POST /api/v1/records``), answers the
common form of these three requests by calling the very functions the
views call for the body (``checkpoint_note``, ``tile_bytes``,
``inclusion_proof`` and ``inclusion_body``), with the headers the views'
responses carry and the app's ``after_request`` adds, in the same order.

Anything else goes to Flask unchanged: other paths and methods (HEAD
included), a query string this layer does not recognise (any on
``/checkpoint`` and tiles; on proofs anything but one ``leaf_index`` or one
``leaf_hash`` in the characters clients send), a tile path not in the
canonical form (Flask's routing would redirect or refuse it), and every
error (a bad index, an unknown hash, a tile beyond the tree): nothing has
been read from the request, so Flask does the request again from the
start, and its error table answers. tests/api/test_lean_reads.py compares
the two answers byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from marshmallow import ValidationError

from api.tiles import IMMUTABLE, TILE_PATH, checkpoint_note, tile_bytes
from api.v1 import INCLUSION_QUERY, inclusion_body, inclusion_proof
from api.wsgi_layer import WsgiLayer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_TILE = re.compile(TILE_PATH)
#: One ``leaf_index`` or ``leaf_hash`` whose value needs no decoding but
#: base64's percent-encoded ``+``, ``/`` and ``=``; anything else (``+`` for
#: a space, other escapes, ``&``, repeats, other names) goes to Flask.
_QUERY = re.compile(r"(leaf_index|leaf_hash)=((?:[A-Za-z0-9]|%2[BbFf]|%3[Dd]){1,100})")
_ESCAPES = {"%2B": "+", "%2b": "+", "%2F": "/", "%2f": "/", "%3D": "=", "%3d": "="}
_ESCAPE = re.compile("%(?:2[BbFf]|3[Dd])")

#: werkzeug's status line, and the Content-Type each view's response has.
_OK = "200 OK"
_TEXT = "text/plain; charset=utf-8"
_OCTETS = "application/octet-stream"


class LeanReads(WsgiLayer):
    """A WSGI layer in front of ``flask_wsgi`` answering the common form of
    the three read paths above; ``before`` are the app's ``before_request``
    functions (run first, as Flask runs them) and ``headers`` what its
    ``after_request`` adds."""

    TILE_PREFIX = "/tile/"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING", "")
            try:
                answer = self._answer(path, query)
            except Exception:
                answer = None  # Flask does it again, and its error table answers
            if answer is not None:
                content_type, cache_control, body = answer
                start_response(
                    _OK,
                    [
                        ("Content-Type", content_type),
                        ("Content-Length", str(len(body))),
                        ("Cache-Control", cache_control),
                        *self.headers,
                    ],
                )
                return [body]
        return self.flask_wsgi(environ, start_response)

    def _answer(self, path: str, query: str) -> tuple[str, str, bytes] | None:
        """The answer's Content-Type, Cache-Control and body, or ``None`` for Flask."""
        if path == "/api/v1/proofs/inclusion":
            m = _QUERY.fullmatch(query)
            if m is None:
                return None
            key, value = m.groups()
            if "%" in value:
                value = _ESCAPE.sub(lambda e: _ESCAPES[e.group()], value)
            try:
                q: dict[str, Any] = {key: INCLUSION_QUERY.fields[key].deserialize(value)}
            except ValidationError:
                return None
            self._before()
            body = inclusion_body(self.app, inclusion_proof(self.app, q))
            if body is None:
                return None
            return self.app.json.mimetype, "no-store", body.encode()  # type: ignore[attr-defined]
        if query:
            return None
        if path == "/checkpoint":
            self._before()
            return _TEXT, "no-store", checkpoint_note(self.app)
        if path.startswith(self.TILE_PREFIX):
            rest = path[len(self.TILE_PREFIX) :]
            if _TILE.fullmatch(rest) is None:
                return None
            self._before()
            return _OCTETS, IMMUTABLE, tile_bytes(self.app, rest)
        return None
