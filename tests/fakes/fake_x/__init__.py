"""A protocol-faithful fake of the X (Twitter) API v2, as tweepy.Client uses it.

A real aiohttp application on 127.0.0.1 (port 0). tweepy hard-codes https://api.twitter.com, so tests mount a
URL-rewriting requests adapter on ``client.session``; OAuth 1.0a signatures are computed by requests-oauthlib
while the request is prepared, i.e. over the ORIGINAL https://api.twitter.com URL, before any adapter runs. The
fake therefore verifies HMAC-SHA1 signatures against ``signature_bases`` (the public hosts), never its own
loopback address, and records the base string URI that matched in ``signed_base_urls``.

Wire shapes follow what X really sends (quoted from captured responses): v2 problems
``{"title", "detail", "type", "status"}`` as application/problem+json, ``invalid-request`` problems with an
``errors[]`` list, partial ``errors`` next to ``data`` for missing Tweets/users and refused fields,
``x-rate-limit-*`` headers, OAuth 2.0 token errors ``{"error", "error_description"}``.

Tests drive it through ``FakeX``: seed tweets and users, count calls per endpoint, fail the Nth call, move a
rate-limit reset, hold a request at a barrier (before or after the Tweet is accepted).

The owner's first OAuth 2.0 sign-in: ``GET /i/oauth2/authorize`` stands for x.com's consent page with the
owner's click already made (``fake.consent``: "allow" or "deny"). It checks the client id, the callback URL
against ``fake.callback_urls`` (exactly, as X does) and that a PKCE challenge came, records the query in
``fake.authorizations`` and answers 302 to the redirect_uri with ``state`` and a code (valid 30 s, once), or with
``error=access_denied``. ``POST /2/oauth2/token`` then takes ``grant_type=authorization_code`` and checks the
code, the redirect_uri and the code_verifier against the recorded challenge (S256 or plain). Client
authentication is HTTP Basic for a confidential client (the default); ``client_type="public"`` takes client_id
in the body instead.

Layout: ``protocol`` (limits, error bodies and texts), ``server`` (``FakeX``: state, controls, authentication),
``wire`` (the aiohttp handlers and middleware). ``Hold`` (re-exported here) is the one every fake shares, from
``tests.fakes.threaded``.
"""
from tests.fakes.fake_x.protocol import (APP_ONLY_FORBIDDEN, AUTHORIZE_REFUSED, BAD_CODE, BAD_REDIRECT, BAD_REFRESH,
                                         BAD_VERIFIER, DUPLICATE, ENDPOINTS, NO_CLIENT_AUTH, OAUTH1_PERMISSIONS,
                                         REPLY_GONE, SIGNATURE_BASES, TOO_LONG, XError, problem, weighted_length)
from tests.fakes.fake_x.server import FakeX, Tweet, User
from tests.fakes.fake_x.wire import create_app
from tests.fakes.threaded import Hold, connection_closed

__all__ = ["APP_ONLY_FORBIDDEN", "AUTHORIZE_REFUSED", "BAD_CODE", "BAD_REDIRECT", "BAD_REFRESH", "BAD_VERIFIER",
           "DUPLICATE", "ENDPOINTS", "NO_CLIENT_AUTH", "OAUTH1_PERMISSIONS", "REPLY_GONE", "SIGNATURE_BASES",
           "TOO_LONG", "FakeX", "Hold", "Tweet", "User", "XError", "connection_closed", "create_app", "problem",
           "weighted_length"]
