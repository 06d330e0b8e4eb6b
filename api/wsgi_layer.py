"""What the WSGI layers in front of Flask share (``LeanSubmissions`` in
api/submissions.py, ``LeanReads`` in api/lean.py): each answers the common
form of its requests by the views' own functions, without Flask's request
context, and hands everything else to Flask unchanged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class WsgiLayer:
    """``flask_wsgi`` is the app's own WSGI callable, for everything this
    layer does not answer; ``before`` are the app's ``before_request``
    functions (run first, as Flask runs them) and ``headers`` what its
    ``after_request`` adds to every answer."""

    def __init__(
        self,
        app: Flask,
        flask_wsgi: WSGIApplication,
        before: Sequence[Callable[[], object]],
        headers: Sequence[tuple[str, str]],
    ) -> None:
        self.app = app
        self.flask_wsgi = flask_wsgi
        self.before = tuple(before)
        self.headers = tuple(headers)

    def _before(self) -> None:
        for hook in self.before:
            hook()
