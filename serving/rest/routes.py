"""TF Serving's REST URL grammar: which API a (method, request-target) pair addresses.

The patterns are ``tensorflow_serving/model_servers/http_rest_api_util.cc``'s RE2 regexes, matched the way
TF Serving matches them: case-insensitively, as a full match, against the path *and query* (libevent's
``uri_path()``), with the model name and label percent-decoded afterwards. Everything under ``/v1/`` that does
not match (a wrong method included: TF Serving has no 405 there) is ``INVALID_ARGUMENT: Malformed request``;
paths outside ``/v1/`` are not TF Serving's to answer (``ROUTE_NOT_FOUND``: libevent's bare 404).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from serving.errors import InvalidArgument

_API_PREFIX = re.compile(r"(?i)/v1/.*", re.DOTALL)
_PREDICTION = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.DOTALL
)
_MODEL_STATUS = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.DOTALL
)
_INT64_MAX = (1 << 63) - 1

# What a route asks for. ``kind`` is one of these.
STATUS, METADATA, PREDICT, CLASSIFY, REGRESS = "status", "metadata", "predict", "classify", "regress"


@dataclass(frozen=True)
class Route:
    """A request TF Serving's REST handler would dispatch: the API and the model it names."""

    kind: str
    model_name: str
    version: int | None = None
    label: str | None = None


def path_and_query(target: str) -> str:
    """The request-target as libevent's ``uri_path()`` gives it: path plus ``?query`` (an absolute URI is cut)."""
    if target.startswith("/"):
        return target
    parts = urlsplit(target)
    out = parts.path or "/"
    if parts.query:
        out += "?" + parts.query
    return out


def is_api_path(target: str) -> bool:
    """True for paths TF Serving's REST dispatcher accepts (``(?i)/v1/.*``); others get a bare 404."""
    return _API_PREFIX.fullmatch(path_and_query(target)) is not None


def _version(text: str | None) -> int | None:
    if not text:
        return None
    value = int(text)  # the regex admits only digits
    if value > _INT64_MAX:
        raise InvalidArgument(f"Failed to convert version: {text} to numeric.")
    return value


def _decoded(text: str | None) -> str | None:
    # curl_easy_unescape: %XX only ('+' stays '+'), as TF Serving's DecodeArg.
    return None if not text else unquote(text, errors="replace")


def parse_route(method: str, target: str) -> Route:
    """Map an HTTP method and request-target under ``/v1/`` to a ``Route``, or raise TF Serving's error.

    Routes are immutable and clients repeat the same few URLs, so parsed ones are remembered (``_parse``)."""
    route = _parse(method, target)
    if route is None:
        raise InvalidArgument(f"Malformed request: {method} {path_and_query(target)}")
    return route


@lru_cache(maxsize=4096)
def _parse(method: str, target: str) -> Route | None:
    """The route, None for a malformed request (other errors raise, and are not remembered)."""
    path = path_and_query(target)
    if method == "POST":
        match = _PREDICTION.fullmatch(path)
        if match is None:
            return None
        name, version, label, verb = match.groups()
        if verb not in (PREDICT, CLASSIFY, REGRESS):  # captured case-insensitively, compared exactly
            return None
        return Route(verb, _decoded(name) or "", _version(version), _decoded(label))
    if method == "GET":
        match = _MODEL_STATUS.fullmatch(path)
        if match is None:
            return None
        name, version, label, subresource = match.groups()
        number = _version(version)
        if not name:
            raise InvalidArgument("Missing model name in request.")
        kind = METADATA if subresource == "metadata" else STATUS
        return Route(kind, _decoded(name) or "", number, _decoded(label))
    return None
