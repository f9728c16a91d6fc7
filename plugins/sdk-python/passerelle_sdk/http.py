"""Typed HTTP through the host's ``http`` import.

:class:`Request` builds a request (secrets by reference only: the host substitutes
them); :meth:`Request.send` maps transport failures and statuses the way the host
expects — 401/403 ``unauthorized``, 429 ``rate-limited`` with Retry-After (a short one
is first waited out, up to three times), 404 ``invalid-config``, 5xx and timeouts
``unavailable``, a response over the size cap ``unavailable``; :meth:`Request.json`
reads the body with a :class:`~passerelle_sdk.reader.Reader`."""

import json
from typing import List, Optional, Tuple
from urllib.parse import quote

from componentize_py_types import Err
from wit_world.imports import http as host
from wit_world.imports import types

from .errors import Failure
from .log import info
from .reader import Reader, parse

#: A 429 whose Retry-After is at most this is retried within the run (the host holds
#: the platform's next request until then); a longer one ends the run ``rate-limited``.
RETRY_WITHIN_RUN_SECS = 30
#: How many 429s one request retries before giving up.
RATE_LIMIT_RETRIES = 3


def encode(component: str) -> str:
    """Percent-encodes a query-string component (RFC 3986: only ``A-Za-z0-9-_.~``
    stay as they are)."""
    return quote(component, safe="-_.~")


def _header(response, name: str) -> Optional[str]:
    for n, v in response.headers:
        if n.lower() == name:
            return v
    return None


def _retry_after(response) -> Optional[int]:
    value = _header(response, "retry-after")
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def status_error(endpoint: str, response) -> Optional[Failure]:
    """The failure a non-2xx status stands for, if any."""
    status = response.status
    if 200 <= status < 300:
        return None
    if status in (401, 403):
        return Failure.unauthorized(f"{endpoint}: HTTP {status}")
    if status == 429:
        return Failure.rate_limited(_retry_after(response))
    if status == 404:
        return Failure.invalid_config(f"{endpoint}: HTTP 404 (check the settings)")
    if 500 <= status < 600:
        return Failure.unavailable(f"{endpoint}: HTTP {status}")
    return Failure.internal(f"{endpoint}: unexpected HTTP {status}")


def _transport(endpoint: str, e) -> Failure:
    if isinstance(e, types.HttpError_Denied):
        return Failure.invalid_config(f"{endpoint}: denied: {e.value}")
    if isinstance(e, types.HttpError_InvalidRequest):
        return Failure.internal(f"{endpoint}: invalid request: {e.value}")
    if isinstance(e, types.HttpError_Timeout):
        return Failure.unavailable(f"{endpoint}: timed out")
    if isinstance(e, types.HttpError_TooLarge):
        return Failure.unavailable(f"{endpoint}: response larger than {e.value} bytes")
    return Failure.unavailable(f"{endpoint}: {e.value}")


class Request:
    def __init__(self, method: types.Method, url: str):
        self.method, self.url = method, url
        self._query: List[Tuple[str, str]] = []
        self.headers: List[types.Header] = [
            types.Header("accept", types.HeaderValue_Text("application/json"))]
        self.templated: List[types.SecretTemplate] = []
        self.body: Optional[bytes] = None
        self._timeout_ms: Optional[int] = None
        self._endpoint: Optional[str] = None

    def endpoint(self, name: str) -> "Request":
        """The endpoint's name in drift reports and errors (``GET /api/x/{id}``)."""
        self._endpoint = name
        return self

    def query(self, key: str, value: str) -> "Request":
        self._query.append((key, value))
        return self

    def header(self, name: str, value: str) -> "Request":
        self.headers.append(types.Header(name, types.HeaderValue_Text(value)))
        return self

    def secret_header(self, name: str, secret: str) -> "Request":
        """A header whose value is the account's secret ``secret`` (set by the host)."""
        self.headers.append(types.Header(name, types.HeaderValue_Secret(secret)))
        return self

    def bearer(self, secret: str) -> "Request":
        """``Authorization: Bearer <secret>``."""
        return self.secret_prefix("authorization", "Bearer ", secret)

    def secret_prefix(self, name: str, prefix: str, secret: str) -> "Request":
        """A header whose value is literal ``prefix`` then the account's secret."""
        self.headers.append(types.Header(
            name, types.HeaderValue_SecretWithPrefix(types.SecretRef(prefix, secret))))
        return self

    def secret_template(self, header: str, before: str, secret: str, after: str) -> "Request":
        """A header whose value is the account's secret inside literal text:
        ``secret_template("authorization", 'Platform apikey="', "api-key", '"')`` sends
        ``Authorization: Platform apikey="<the key>"``."""
        self.templated.append(types.SecretTemplate(header, before, secret, after))
        return self

    def json_body(self, value) -> "Request":
        self.body = json.dumps(value).encode()
        return self.header("content-type", "application/json")

    def timeout_ms(self, ms: int) -> "Request":
        """This request's own timeout (at most the host's)."""
        self._timeout_ms = ms
        return self

    def full_url(self) -> str:
        """The URL with its query string, as it will be sent."""
        if not self._query:
            return self.url
        q = "&".join(f"{encode(k)}={encode(v)}" for k, v in self._query)
        return f"{self.url}{'&' if '?' in self.url else '?'}{q}"

    def endpoint_name(self) -> str:
        if self._endpoint:
            return self._endpoint
        rest = self.url.split("://", 1)[-1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return f"{self.method.name} {path.split('?')[0].split('#')[0]}"

    def send(self):
        """Sends it; any status but 2xx raises the matching :class:`Failure`."""
        endpoint = self.endpoint_name()
        request = types.Request(self.method, self.full_url(), self.headers, self.body, self._timeout_ms)
        retries = 0
        while True:
            try:
                if self.templated:
                    response = host.send_templated(request, self.templated)
                else:
                    response = host.send(request)
            except Err as e:
                raise _transport(endpoint, e.value)
            after = _retry_after(response)
            if response.status == 429 and retries < RATE_LIMIT_RETRIES and (
                after is None or after <= RETRY_WITHIN_RUN_SECS
            ):
                retries += 1  # the host holds the platform's next request until then
                info("rate-limited by the platform; retrying after its delay",
                     endpoint=endpoint, retry_after_s=after or 1)
                continue
            failure = status_error(endpoint, response)
            if failure is not None:
                raise failure
            return response

    def json(self) -> Reader:
        """Sends it and reads the 2xx JSON body."""
        return parse(self.endpoint_name(), self.send().body)


def get(url: str) -> Request:
    return Request(types.Method.GET, url)


def post(url: str) -> Request:
    return Request(types.Method.POST, url)
