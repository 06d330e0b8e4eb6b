"""A small HTTP layer for the ledger's JSON API, over httpx.

It adds exactly three things to httpx: a base URL with timeouts, bounded
retries, and RFC 9457 problem documents turned into :class:`ProblemResponse`.

Retry policy (the only place it is decided):

* connection failures, timeouts and dropped connections are retried with
  exponential backoff and jitter;
* 429 and 503 are retried after the ``Retry-After`` the server sent
  (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), or after the backoff
  when there is none; 502 and 504, which a reverse proxy answers for a
  restarting server, are retried after the backoff;
* every other status, 4xx above all, is final: the same request would get
  the same answer.

Retrying a POST whose response was lost is safe for this API only because
submissions are idempotent: an identical record that is already logged comes
back as ``"existing"``, never as a second entry.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ledger.errors import InvalidInput, LedgerError
from ledger.records.entries import parse_json

USER_AGENT = "mdl-client/1"
#: Statuses worth asking again; everything else is the server's last word.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Transport failures worth retrying. Not httpx.TransportError as a whole:
#: it also covers UnsupportedProtocol, which no retry can fix.
RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_DELAY_SECONDS = re.compile(r"[0-9]{1,10}")


class ClientError(LedgerError):
    """Base of the client's errors; the message is meant for the user as is."""


class Unreachable(ClientError):
    """No HTTP answer came back within the retry budget."""


class ProblemResponse(ClientError):
    """The server answered with a final error status.

    ``problem`` is the RFC 9457 document (synthesised from the status line
    when the body is not one); ``errors`` is its ``errors`` list, if any.
    """

    def __init__(self, status: int, problem: dict[str, Any], attempts: int = 1) -> None:
        self.status = status
        self.problem = problem
        title = problem.get("title") or "error"
        detail = problem.get("detail")
        message = f"HTTP {status} {title}" + (f": {detail}" if detail else "")
        if attempts > 1:
            message += f" (gave up after {attempts} attempts)"
        super().__init__(message)

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``attempts`` counts every try, the first included."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: A server asking for a longer pause than this is treated as final.
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("invalid retry policy")

    def backoff(self, failures: int, rng: Callable[[], float]) -> float:
        """The pause after the ``failures``-th consecutive failure (1-based).

        Exponential, capped at ``max_delay``, with "equal jitter": between half
        and all of the exponential value, so that clients that failed together
        do not retry together, yet none retries at once.
        """
        d = min(self.max_delay, self.base_delay * 2.0 ** (failures - 1))
        return d / 2 + rng() * d / 2


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse a ``Retry-After`` header into seconds from ``now``; None if absent or malformed."""
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 HTTP-dates are GMT; -0000 parses as naive
        return None
    return max(0.0, when.timestamp() - now)


def check_base_url(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash, if it is an absolute http(s) URL."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as e:
        raise ClientError(f"not a valid URL: {base_url!r}: {e}") from None
    if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise ClientError(f"not an http(s) base URL: {base_url!r}")
    return str(url).rstrip("/")


def problem_of(resp: httpx.Response) -> dict[str, Any]:
    """The response's problem document, or one made up from its status line."""
    if "json" in resp.headers.get("content-type", ""):
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
    detail: str | None
    if resp.is_redirect:  # never followed: a moved ledger is for the user to notice
        detail = f"redirected to {resp.headers.get('location')}; use that URL"
    else:
        detail = resp.text.strip()[:200] or None
    return {"status": resp.status_code, "title": resp.reason_phrase, "detail": detail}


class Http:
    """A session with one ledger: ``Http("https://ledger.example")``.

    ``sleep``, ``rng`` and ``clock`` are injectable so tests can observe the
    pauses without taking them; ``on_retry`` is told about each retry.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        policy: RetryPolicy | None = None,
        on_retry: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.policy = policy or RetryPolicy()
        self._on_retry = on_retry
        self._sleep, self._rng, self._clock = sleep, rng, clock
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json, application/problem+json"},
        )

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """Send a request, retrying per the policy; return a 2xx response.

        Raises :class:`ProblemResponse` for a final error status (or a
        retryable one still failing on the last attempt) and
        :class:`Unreachable` when no answer came at all.
        """
        headers = {"Content-Type": "application/json"} if content is not None else None
        what = f"{method} {self.base_url}{path}"
        for attempt in range(1, self.policy.attempts + 1):
            last = attempt == self.policy.attempts
            try:
                resp = self._client.request(method, path, content=content, params=params, headers=headers)
            except RETRY_ERRORS as e:
                why = f"{what}: {str(e) or type(e).__name__}"
                if last:
                    raise Unreachable(f"{why} (gave up after {attempt} attempts)") from None
                self._pause(self.policy.backoff(attempt, self._rng), why)
                continue
            except httpx.HTTPError as e:
                raise Unreachable(f"{what}: {e}") from None
            if resp.status_code < 300:
                return resp
            problem = problem_of(resp)
            if resp.status_code not in RETRY_STATUSES or last:
                raise ProblemResponse(resp.status_code, problem, attempts=attempt)
            delay = self._retry_delay(resp, attempt)
            if delay is None:
                wait = resp.headers.get("retry-after")
                problem = {**problem, "detail": f"{problem.get('detail') or ''} (Retry-After: {wait})".strip()}
                raise ProblemResponse(resp.status_code, problem, attempts=attempt)
            self._pause(delay, f"{what}: HTTP {resp.status_code}")
        raise AssertionError("the retry loop returns or raises")

    def _retry_delay(self, resp: httpx.Response, failures: int) -> float | None:
        """Seconds to wait before retrying ``resp``; None if the server asks too much."""
        after = None
        if resp.status_code in (429, 503):
            after = retry_after_seconds(resp.headers.get("retry-after"), self._clock())
        if after is None:
            return self.policy.backoff(failures, self._rng)
        return after if after <= self.policy.max_retry_after else None

    def _pause(self, delay: float, why: str) -> None:
        if self._on_retry is not None:
            self._on_retry(f"{why}; retrying in {delay:.1f}s")
        self._sleep(delay)

    def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET ``path`` and return its JSON body."""
        return _json_of(self.request("GET", path, params=params))

    def post_json(self, path: str, body: bytes) -> tuple[int, Any]:
        """POST already-encoded JSON; return (status, JSON body)."""
        resp = self.request("POST", path, content=body)
        return resp.status_code, _json_of(resp)


def _json_of(resp: httpx.Response) -> Any:
    """The body, parsed as strictly as the log parses ours (no duplicate keys)."""
    try:
        return parse_json(resp.content)
    except InvalidInput as e:
        raise ClientError(f"{resp.request.method} {resp.request.url}: the answer is not JSON: {e}") from None
