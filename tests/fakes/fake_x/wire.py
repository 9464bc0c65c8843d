"""The aiohttp application of FakeX: X API v2 endpoints as tweepy.Client calls them, and the middleware that
counts calls, injects failures, authenticates, applies rate limits, holds requests and adds x-rate-limit-* headers."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import secrets
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from tests.fakes.fake_x.protocol import (APP_ONLY_FORBIDDEN, AUTHORIZE_REFUSED, BAD_CODE, BAD_REDIRECT, BAD_REFRESH,
                                         BAD_VERIFIER, DUPLICATE, ENDPOINTS, METRIC_FIELDS, NO_CLIENT_AUTH,
                                         OAUTH1_PERMISSIONS, PRIVATE_METRICS, PROBLEMS, REPLY_GONE, TOO_LONG,
                                         UNAUTHENTICATED, USER_CONTEXT_ONLY, USER_METRICS, WRITES, XError, _iso,
                                         _parse_time, field_refused, invalid_request, not_found, problem,
                                         weighted_length)
from tests.fakes.fake_x.server import FakeX, Tweet, User, _Auth, _Fault, _Grant

FAKE = web.AppKey("fake_x", FakeX)
AUTH = web.RequestKey("x_auth", _Auth)
FORM = web.RequestKey("x_form", dict)


def _fields(request: web.Request, name: str) -> set[str]:
    return {f for f in request.query.get(name, "").split(",") if f}


def _tweet_json(fake: FakeX, tweet: Tweet, fields: set[str], auth: _Auth, errors: list[dict[str, Any]]) -> dict:
    out: dict[str, Any] = {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}
    if "created_at" in fields:
        out["created_at"] = _iso(tweet.created_at)
    if "author_id" in fields:
        out["author_id"] = tweet.author_id
    if "conversation_id" in fields:
        root = tweet
        while root.in_reply_to_tweet_id and root.in_reply_to_tweet_id in fake._tweets:
            root = fake._tweets[root.in_reply_to_tweet_id]
        out["conversation_id"] = root.id
    if "referenced_tweets" in fields and tweet.in_reply_to_tweet_id:
        out["referenced_tweets"] = [{"type": "replied_to", "id": tweet.in_reply_to_tweet_id}]
    if "public_metrics" in fields:
        out["public_metrics"] = dict(tweet.public_metrics)
    owned = auth.kind != "app" and auth.user_id == tweet.author_id
    recent = datetime.now(timezone.utc) - tweet.created_at <= timedelta(days=30)
    for name in PRIVATE_METRICS:
        if name not in fields:
            continue
        if owned and recent:
            out[name] = dict(getattr(tweet, name))
        else:
            errors.extend(field_refused(tweet.id, f"{name}.{sub}") for sub in METRIC_FIELDS[name])
    return out


def _user_json(fake: FakeX, user: User, fields: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
    if "public_metrics" in fields:
        live = sum(1 for t in fake._tweets.values() if t.author_id == user.id and not t.deleted)
        metrics = dict.fromkeys(USER_METRICS, 0) | {"tweet_count": live}
        out["public_metrics"] = metrics | user.public_metrics
    return out


async def create_tweet(request: web.Request) -> web.Response:
    fake, auth = request.app[FAKE], request[AUTH]
    try:
        body = await request.json()
    except ValueError:
        raise XError(400, problem(400, "Request body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise XError(400, problem(400, "Request body must be a JSON object."))
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise invalid_request("text", str(text or ""), "$.text: is missing but it is required")
    if weighted_length(text) > fake.max_weighted_length:
        raise XError(400, {"errors": [{"message": TOO_LONG}], "title": "Invalid Request",
                           "detail": "One or more parameters to your request was invalid.",
                           "type": PROBLEMS + "invalid-request"})
    reply = body.get("reply") or {}
    reply_to = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
    with fake._lock:
        if reply_to is not None:
            target = fake._tweets.get(str(reply_to))
            if target is None or target.deleted:
                raise XError(403, problem(403, REPLY_GONE))
        since = datetime.now(timezone.utc) - timedelta(seconds=fake.duplicate_window)
        if any(t.author_id == auth.user_id and not t.deleted and t.text == text and t.created_at >= since
               for t in fake._tweets.values()):
            raise XError(403, problem(403, DUPLICATE))
        tweet = fake._store(text, auth.user_id, None, str(reply_to) if reply_to is not None else None)
    return web.json_response({"data": {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}},
                             status=201)


async def delete_tweet(request: web.Request) -> web.Response:
    fake, auth = request.app[FAKE], request[AUTH]
    with fake._lock:
        tweet = fake._tweets.get(request.match_info["id"])
        if tweet is None or tweet.deleted:
            return web.json_response({"data": {"deleted": False}})
        if tweet.author_id != auth.user_id:
            raise XError(403, problem(403, "You are not allowed to delete a Tweet that is not yours."))
        tweet.deleted = True
    return web.json_response({"data": {"deleted": True}})


async def lookup_tweets(request: web.Request) -> web.Response:
    fake, auth = request.app[FAKE], request[AUTH]
    raw = request.query.get("ids", "")
    ids = [i for i in raw.split(",") if i]
    if not 1 <= len(ids) <= 100:
        raise invalid_request("ids", raw, f"The number of values in the `ids` query parameter list [{len(ids)}] "
                                          "is not between 1 and 100")
    for tid in ids:
        if not tid.isdigit():
            raise invalid_request("ids", tid, f"The `ids` query parameter value [{tid}] is not valid")
    fields, data, errors = _fields(request, "tweet.fields"), [], []
    with fake._lock:
        for tid in ids:
            tweet = fake._tweets.get(tid)
            if tweet is None or tweet.deleted:
                errors.append(not_found("tweet", "ids", tid))
            else:
                data.append(_tweet_json(fake, tweet, fields, auth, errors))
    out: dict[str, Any] = {"data": data} if data else {}
    if errors:
        out["errors"] = errors
    return web.json_response(out)


async def get_me(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    with fake._lock:
        user = fake._users[request[AUTH].user_id]
        return web.json_response({"data": _user_json(fake, user, _fields(request, "user.fields"))})


async def user_by_username(request: web.Request) -> web.Response:
    fake, username = request.app[FAKE], request.match_info["username"]
    if not re.fullmatch(r"[A-Za-z0-9_]{1,15}", username):
        raise invalid_request("username", username, f"The `username` query parameter value [{username}] does not "
                                                     "match ^[A-Za-z0-9_]{1,15}$")
    with fake._lock:
        user = next((u for u in fake._users.values() if u.username.lower() == username.lower()), None)
        if user is None:
            return web.json_response({"errors": [not_found("user", "username", username)]})
        return web.json_response({"data": _user_json(fake, user, _fields(request, "user.fields"))})


async def user_timeline(request: web.Request) -> web.Response:
    fake, auth, uid = request.app[FAKE], request[AUTH], request.match_info["id"]
    q = request.query
    try:
        max_results = int(q.get("max_results", "10"))
    except ValueError:
        max_results = -1
    if not 5 <= max_results <= 100:
        raise invalid_request("max_results", q.get("max_results", ""), "The `max_results` query parameter value "
                                                                       f"[{q.get('max_results')}] is not between 5 and 100")
    start = _parse_time("start_time", q["start_time"]) if "start_time" in q else None
    end = _parse_time("end_time", q["end_time"]) if "end_time" in q else None
    bounds: dict[str, int] = {}
    for name, base in (("pagination_token", 36), ("since_id", 10), ("until_id", 10)):
        if name in q:
            try:
                bounds[name] = int(q[name], base)
            except ValueError:
                raise invalid_request(name, q[name], f"The `{name}` query parameter value [{q[name]}] is not "
                                                     "valid") from None
    fields, errors = _fields(request, "tweet.fields"), []
    with fake._lock:
        if uid not in fake._users:
            return web.json_response({"errors": [not_found("user", "id", uid)]})
        found = sorted((t for t in fake._tweets.values() if t.author_id == uid and not t.deleted
                        and (start is None or t.created_at >= start) and (end is None or t.created_at < end)
                        and int(t.id) > bounds.get("since_id", -1)
                        and int(t.id) < min(bounds.get("until_id", 1 << 64), bounds.get("pagination_token", 1 << 64))),
                       key=lambda t: int(t.id), reverse=True)
        page = found[:max_results]
        data = [_tweet_json(fake, t, fields, auth, errors) for t in page]
    meta: dict[str, Any] = {"result_count": len(page)}
    if page:
        meta.update(newest_id=page[0].id, oldest_id=page[-1].id)
        if len(found) > len(page):
            meta["next_token"] = _b36(int(page[-1].id))
    out: dict[str, Any] = {"data": data, "meta": meta} if data else {"meta": meta}
    if errors:
        out["errors"] = errors
    return web.json_response(out)


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def _token_error(description: str, status: int = 400, error: str = "invalid_request") -> XError:
    return XError(status, {"error": error, "error_description": description})


def _client_authenticated(fake: FakeX, request: web.Request, form: dict[str, str]) -> None:
    """A confidential client authenticates with HTTP Basic (client id, secret); a public one has no secret and
    names itself with client_id in the body. A Basic header, when sent, must always be right."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            cid, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            cid = secret = ""
        if not (hmac.compare_digest(cid, fake.client_id) and hmac.compare_digest(secret, fake.client_secret)):
            raise _token_error(NO_CLIENT_AUTH, 401, "unauthorized_client")
        return
    if fake.client_type != "public":
        raise _token_error(NO_CLIENT_AUTH, 401, "unauthorized_client")
    if not form.get("client_id"):
        raise _token_error("Missing required parameter [client_id].")
    if not hmac.compare_digest(form["client_id"], fake.client_id):
        raise _token_error(NO_CLIENT_AUTH, 401, "unauthorized_client")


def _pkce_matches(verifier: str, grant: _Grant) -> bool:
    if grant.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        derived = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        derived = verifier
    return hmac.compare_digest(derived, grant.code_challenge)


async def oauth2_token(request: web.Request) -> web.Response:
    """POST /2/oauth2/token: the authorization_code grant (PKCE) and the refresh_token grant (rotating)."""
    fake, form = request.app[FAKE], request[FORM]
    _client_authenticated(fake, request, form)
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return _authorization_code_grant(fake, form)
    if grant_type != "refresh_token":
        raise _token_error("Value passed for the grant type was invalid. Grant type should be one of "
                           "[authorization_code, refresh_token].")
    with fake._lock:
        given = form.get("refresh_token", "")
        if fake.refresh_token is None or not hmac.compare_digest(given, fake.refresh_token):
            raise _token_error(BAD_REFRESH)
        fake.refresh_token = "rt-" + secrets.token_urlsafe(24)  # rotation: the old one is spent
        access = fake._issue(None)
        return web.json_response({"token_type": "bearer", "expires_in": fake.token_lifetime, "access_token": access,
                                  "scope": fake.oauth2_scope, "refresh_token": fake.refresh_token})


def _authorization_code_grant(fake: FakeX, form: dict[str, str]) -> web.Response:
    for name in ("code", "redirect_uri", "code_verifier"):
        if not form.get(name):
            raise _token_error(f"Missing required parameter [{name}].")
    with fake._lock:
        # Presented once, whatever happens next: a code that failed its checks may have been intercepted.
        grant = fake._codes.pop(form["code"], None)
        if grant is None or grant.expires_at <= time.time() or grant.client_id != fake.client_id:
            raise _token_error(BAD_CODE)
        if form["redirect_uri"] != grant.redirect_uri:
            raise _token_error(BAD_REDIRECT)
        if not _pkce_matches(form["code_verifier"], grant):
            raise _token_error(BAD_VERIFIER)
        access = fake._issue(None)
        fake.oauth2_scope = grant.scope
        body: dict[str, Any] = {"token_type": "bearer", "expires_in": fake.token_lifetime, "access_token": access,
                                "scope": grant.scope}
        if "offline.access" in grant.scope.split():  # no offline.access, no refresh token
            fake.refresh_token = body["refresh_token"] = "rt-" + secrets.token_urlsafe(24)
        return web.json_response(body)


async def authorize(request: web.Request) -> web.Response:
    """GET /i/oauth2/authorize: X's consent page, with the owner's click already made (``fake.consent``).

    A request X cannot trust (unknown client, a redirect_uri not registered exactly, no PKCE challenge) gets an
    error page and no redirect. Otherwise the browser is sent back to redirect_uri with ``state`` and a code, or
    with ``error=access_denied`` when the owner cancels."""
    fake, q = request.app[FAKE], request.query
    with fake._lock:
        fake.authorizations.append(dict(q))
    redirect_uri, scope = q.get("redirect_uri", ""), " ".join(q.get("scope", "").split())
    method = q.get("code_challenge_method", "plain")
    if (q.get("response_type") != "code" or q.get("client_id") != fake.client_id
            or redirect_uri not in fake.callback_urls or not q.get("state") or not q.get("code_challenge")
            or method not in ("S256", "plain") or not scope):
        return web.Response(status=400, text=f"<!doctype html><p>{html.escape(AUTHORIZE_REFUSED)}</p>",
                            content_type="text/html")
    answer = {"state": q["state"]}
    if fake.consent == "allow":
        code = secrets.token_urlsafe(48)
        with fake._lock:
            fake._codes[code] = _Grant(fake.client_id, redirect_uri, scope, q["code_challenge"], method,
                                       time.time() + fake.code_lifetime)
        answer["code"] = code
    else:
        answer["error"] = "access_denied"
    glue = "&" if "?" in redirect_uri else "?"
    return web.Response(status=302, headers={"Location": redirect_uri + glue + urllib.parse.urlencode(answer)})


def _key_of(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return request.method + " " + re.sub(r"{(\w+)}", r":\1", resource.canonical)


@web.middleware
async def _x_middleware(request: web.Request, handler) -> web.StreamResponse:
    fake: FakeX = request.app[FAKE]
    key = _key_of(request)
    if key is None or key not in ENDPOINTS:
        return XError(404, problem(404, "Sorry, that page does not exist")).response()
    form: dict[str, str] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        form = {k: str(v) for k, v in (await request.post()).items()}
    request[FORM] = form
    body = None
    if request.content_type == "application/json" and request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            body = None
    with fake._lock:
        fake.calls[key] += 1
        fake.requests.append({"key": key, "method": request.method, "path_qs": request.path_qs, "json": body,
                              "form": form, "authorization": request.headers.get("Authorization", "")})
    fault = fake._take_fault(key)
    try:
        if fault is not None and not fault.after_accept:
            return _fault_response(request, fake, key, fault)
        if key not in UNAUTHENTICATED:
            auth = request[AUTH] = fake._authenticate(request, form)
            if auth.kind == "app" and key in USER_CONTEXT_ONLY:
                raise XError(403, problem(403, APP_ONLY_FORBIDDEN, title="Unsupported Authentication",
                                          type_=PROBLEMS + "unsupported-authentication"))
            if auth.kind == "oauth1" and key in WRITES and fake.access_level != "read-write":
                raise XError(403, problem(403, OAUTH1_PERMISSIONS, type_=PROBLEMS + "oauth1-permissions"))
            fake._consume(key)
        hold = fake._take_hold(lambda h: h.match == key and not h.after)
        if hold is not None:
            await hold.wait(request, body)
            if hold.client_gone():  # the client died while we held it: the request never took effect
                hold.abandoned = True
                return web.Response(status=499)
        response = await handler(request)
        if fault is not None:
            response = _fault_response(request, fake, key, fault)
        hold = fake._take_hold(lambda h: h.match == key and h.after)
        if hold is not None:
            await hold.wait(request, body)
    except XError as err:
        response = err.response()
    response.headers.update(fake._rate_headers(key))
    if request.get(AUTH) is not None and request[AUTH].kind == "oauth1":
        response.headers["x-access-level"] = fake.access_level
    return response


def _fault_response(request: web.Request, fake: FakeX, key: str, fault: _Fault) -> web.StreamResponse:
    if fault.status is None:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)
    headers = fake._rate_headers(key)
    if fault.status == 429 and headers:
        headers["x-rate-limit-remaining"] = "0"
    headers |= fault.headers
    return XError(fault.status, fault.body or problem(fault.status), headers).response()


def create_app(fake: FakeX) -> web.Application:
    app = web.Application(middlewares=[_x_middleware])
    app[FAKE] = fake
    app.router.add_post("/2/tweets", create_tweet)
    app.router.add_delete("/2/tweets/{id}", delete_tweet)
    app.router.add_get("/2/tweets", lookup_tweets)
    app.router.add_get("/2/users/me", get_me)
    app.router.add_get("/2/users/by/username/{username}", user_by_username)
    app.router.add_get("/2/users/{id}/tweets", user_timeline)
    app.router.add_post("/2/oauth2/token", oauth2_token)
    app.router.add_get("/i/oauth2/authorize", authorize)
    return app
