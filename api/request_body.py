"""Request bodies, refused whole beyond ``MAX_CONTENT_LENGTH`` however framed.

Werkzeug refuses a ``Content-Length`` above the limit before reading, but a
body without one (``Transfer-Encoding: chunked``) it reads only up to the
limit and then reports the end of the stream (``LimitedStream.readall``,
Werkzeug 3.1): a chunked body cut at 8 MiB whose first 8 MiB still parse
was accepted. Reading one byte past the limit tells the two apart.
"""

from __future__ import annotations

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream


def read_body() -> bytes:
    """Return the whole request body, or raise 413 if it is longer than
    ``MAX_CONTENT_LENGTH``, reading at most one byte past the limit."""
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    body = get_input_stream(request.environ, safe_fallback=True, max_content_length=limit + 1).read()
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body
