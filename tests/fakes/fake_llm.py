"""A protocol-faithful fake of an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama's
``/v1``, Qwen's DashScope compatible mode).

It is a real aiohttp application on 127.0.0.1 (port 0) in a background thread, so the product's
``requests`` client talks to it over the wire: ``POST /v1/chat/completions`` answers the standard
``chat.completion`` object, errors use OpenAI's ``{"error": {"message", "type", "param", "code"}}``
shape, and a configured API key is checked as a Bearer token.

Tests script the model: queue replies (``reply``), or answer from the request (``respond_with``),
inject failures (``fail``), and inspect what was asked (``requests``). With nothing scripted the
model answers ``{"steps": [], "summary": "No action is needed."}``.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from tests.fakes.threaded import ThreadedServer

FAKE = web.AppKey("fake_llm", "FakeLLM")
Reply = str | dict
ROLES = {"system", "developer", "user", "assistant", "tool"}
_ERRORS = {  # (type, code, message) as OpenAI answers them
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: {masked}. You can find your "
          "API key at https://platform.openai.com/account/api-keys."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in {retry}s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass
class Recorded:
    """One request as the server saw it."""
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    def content(self, role: str) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages if m.get("role") == role)


@dataclass
class _Failure:
    status: int
    times: int
    retry_after: float | None
    message: str | None


_DEFAULT = object()


class OpenAIError(Exception):
    def __init__(self, status: int, message: str | None = None, *, code: Any = _DEFAULT,
                 headers: dict[str, str] | None = None, **fmt: str) -> None:
        kind, default_code, default_message = _ERRORS.get(status, ("invalid_request_error", None, "Error."))
        self.status, self.headers = status, headers or {}
        self.body = {"error": {"message": message or default_message.format(**{"masked": "", "retry": "1", **fmt}),
                               "type": kind, "param": None, "code": default_code if code is _DEFAULT else code}}
        super().__init__(self.body["error"]["message"])


class FakeLLM(ThreadedServer):
    name = "fake-llm"
    url_path = "/v1"  # ``url`` is the base URL a client is configured with (``LLM_BASE_URL``)

    def build_app(self) -> web.Application:
        return create_app(self)

    def __init__(self, *, api_key: str | None = None, model: str = "qwen2.5-7b-instruct") -> None:
        self.api_key, self.model = api_key, model
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._responder: Callable[[dict], Reply] | None = None
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        super().__init__()

    # --- scripting (thread-safe) ------------------------------------------------------------------
    def reply(self, *contents: Reply) -> None:
        """Queue the content of the next replies; a dict is sent as its JSON text."""
        with self._lock:
            self._replies.extend(contents)

    def respond_with(self, fn: Callable[[dict], Reply]) -> None:
        """Answer every request the queue does not cover with ``fn(request_json)``."""
        self._responder = fn

    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None, message: str | None = None) -> None:
        """Answer the next ``times`` requests with an OpenAI-style HTTP error."""
        with self._lock:
            self._failures.append(_Failure(status, times, retry_after, message))

    # --- lifecycle --------------------------------------------------------------------------------
    # --- behaviour --------------------------------------------------------------------------------
    def _check(self, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            if self._failures:
                fail = self._failures[0]
                fail.times -= 1
                if fail.times <= 0:
                    self._failures.popleft()
                extra = {"Retry-After": f"{fail.retry_after:g}"} if fail.retry_after is not None else {}
                raise OpenAIError(fail.status, fail.message, headers=extra, retry=f"{fail.retry_after or 1:g}")
        if self.api_key is not None:
            auth = headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                raise OpenAIError(401, "You didn't provide an API key. You need to provide your API key in an "
                                  "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", code=None)
            given = auth[len("Bearer "):]
            if given != self.api_key:
                raise OpenAIError(401, masked=f"{given[:3]}{'*' * max(0, len(given) - 7)}{given[-4:]}")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
            raise OpenAIError(400, "you must provide a model parameter", code=None)
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(
                isinstance(m, dict) and m.get("role") in ROLES and "content" in m for m in msgs):
            raise OpenAIError(400, "Invalid value for 'messages': expected a non-empty array of messages.")
        kind = (body.get("response_format") or {"type": "text"}).get("type")
        if kind not in ("text", "json_object", "json_schema"):
            raise OpenAIError(400, f"Invalid value for 'response_format.type': {kind!r}.")
        if kind == "json_object" and not any("json" in str(m["content"]).lower() for m in msgs):
            raise OpenAIError(400, "'messages' must contain the word 'json' in some form, to use "
                              "'response_format' of type 'json_object'.")

    def _content(self, body: dict) -> str:
        with self._lock:
            reply = self._replies.popleft() if self._replies else None
        if reply is None:
            reply = self._responder(body) if self._responder else {"steps": [], "summary": "No action is needed."}
        return reply if isinstance(reply, str) else json.dumps(reply)

    def completion(self, body: dict) -> dict[str, Any]:
        content = self._content(body)
        prompt = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4
        return {
            "id": f"chatcmpl-fake{next(self._ids):06d}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(content) // 4,
                      "total_tokens": prompt + len(content) // 4},
        }


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except OpenAIError as err:
        return web.json_response(err.body, status=err.status, headers=err.headers)


async def chat_completions(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    try:
        body = await request.json()
    except ValueError:
        body = None
    headers = dict(request.headers)
    fake.requests.append(Recorded(headers, body if isinstance(body, dict) else {}))
    fake._check(headers, body)
    return web.json_response(fake.completion(body), headers={"x-request-id": f"req_{len(fake.requests)}"})


async def models(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    return web.json_response({"object": "list", "data": [
        {"id": fake.model, "object": "model", "created": 0, "owned_by": "fake"}]})


def create_app(fake: FakeLLM) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[FAKE] = fake
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
    return app
