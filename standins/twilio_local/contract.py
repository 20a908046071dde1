"""Requests and responses checked against Twilio's own OpenAPI document (openapi-core).

The document is Twilio's published `twilio_api_v2010.json`. It names https://api.twilio.com as
its server, so requests are matched as if they were sent there, whatever address the local
server listens on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from hub.settings import PROJECT_ROOT

# openapi-core (a test extra) is imported only when a contract is used, so the demo server runs
# without it, unchecked.

# The shared copy beside the project; never vendored into it.
DEFAULT_CONTRACT = PROJECT_ROOT.parent / "shared" / "contracts" / "twilio" / "twilio_api_v2010.json"
TWILIO_HOST = "https://api.twilio.com"

_cache: dict[Path, Any] = {}
_cache_lock = threading.Lock()


def load(path: Path = DEFAULT_CONTRACT) -> Any:
    """The parsed document, an openapi_core.OpenAPI (about 2 MB, so parsed once per process)."""
    from openapi_core import OpenAPI

    path = path.resolve()
    with _cache_lock:
        if path not in _cache:
            # openapi-core's own file loader reads JSON as YAML, which rejects this document's
            # surrogate-pair escapes; the json module reads it as written.
            _cache[path] = OpenAPI.from_dict(json.loads(path.read_text(encoding="utf-8")))
        return _cache[path]


@dataclass
class ContractRequest:
    """openapi-core's Request protocol for a request meant for api.twilio.com."""

    method_name: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None
    query: str = ""
    host_url: str = TWILIO_HOST

    @cached_property
    def parameters(self) -> Any:
        from urllib.parse import parse_qsl

        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        return RequestParameters(
            query=ImmutableMultiDict(parse_qsl(self.query, keep_blank_values=True)),
            header=Headers(list(self.headers.items())),
        )

    @property
    def method(self) -> str:
        return self.method_name.lower()

    @property
    def content_type(self) -> str:
        return {k.lower(): v for k, v in self.headers.items()}.get("content-type") or "application/octet-stream"


@dataclass
class ContractResponse:
    status_code: int
    data: bytes | None
    headers: Mapping[str, Any]
    content_type: str = "application/json"


class Contract:
    """Validates against the document; `problems` explains each failure in one line."""

    def __init__(self, path: Path = DEFAULT_CONTRACT) -> None:
        self.path = path
        self.api = load(path)

    def request_problem(self, request: ContractRequest) -> str | None:
        """None when the request is one the document allows, else what is wrong."""
        try:
            self.api.validate_request(request)
        except Exception as exc:  # openapi-core raises a family of errors; all mean "not allowed"
            return _describe(exc)
        return None

    def response_problem(self, request: ContractRequest, response: ContractResponse) -> str | None:
        try:
            self.api.validate_response(request, response)
        except Exception as exc:
            return _describe(exc)
        return None


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__ or exc.__context__
    seen = 0
    while cause is not None and seen < 3:
        detail = getattr(cause, "schema_errors", None)
        if detail:
            parts.append("; ".join(str(e.message) for e in detail))
        else:
            parts.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return " <- ".join(parts)
