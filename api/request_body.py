"""Request bodies, refused whole beyond ``MAX_CONTENT_LENGTH`` however framed.

Werkzeug refuses a ``Content-Length`` above the limit before reading, but a
body without one (``Transfer-Encoding: chunked``) it reads only up to the
limit and then reports the end of the stream (``LimitedStream.readall``,
Werkzeug 3.1): a chunked body cut at 8 MiB whose first 8 MiB still parse
was accepted. Reading one byte past the limit tells the two apart.

Given the WSGI environ rather than Flask's request, so that the records'
``POST``, answered before Flask (api/submissions.py), reads its body here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """Return the whole request body, or raise 413 if it is longer than
    ``limit`` bytes, reading at most one byte past the limit."""
    body = get_input_stream(environ, safe_fallback=True, max_content_length=limit + 1).read()
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body
