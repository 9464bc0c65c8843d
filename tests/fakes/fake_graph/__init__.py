"""A protocol-faithful fake of the Meta Graph API (Facebook Pages, Instagram publishing, insights).

A real aiohttp application on 127.0.0.1 (port 0) serving ``/{version}/...`` (v26.0 unless configured; any
other version answers 2500 "Unknown path components", which catches a client building the wrong URL).
Parameters are read as Graph reads them: query string, form body or JSON body; the token from
``access_token`` or an ``Authorization: Bearer|OAuth`` header; ``appsecret_proof`` is checked when sent.

Errors have Graph's shape ``{"error": {"message", "type", "code", "error_subcode"?, "fbtrace_id"}}`` with the
texts Graph really sends (quoted from captured responses), usually as HTTP 400, and 190s carry the
``WWW-Authenticate: OAuth "Facebook Platform" "invalid_token" ...`` header. Every answer carries usage
headers: ``X-App-Usage`` ({call_count, total_time, total_cputime}, percent), and for Page-token and
Instagram calls ``X-Page-Usage`` / ``X-Business-Use-Case-Usage`` (the latter with
``estimated_time_to_regain_access`` in minutes).

Instagram containers move IN_PROGRESS -> FINISHED (or ERROR / EXPIRED) by the number of status polls, never by
time, so tests need no sleeps. Insights refuse metrics outside a configurable set the way Graph does:
a Page answers "(#100) The value must be a valid insights metric" (Graph does NOT name the metric there);
an Instagram account names a retired metric ("... the impressions metric is no longer supported ...") and
answers an unknown one with "metric[i] must be one of the following values: ...".

Posts and media carry per-post counts set by tests (``set_post_metrics``: reactions, comments, shares, views,
reach; ``set_media_metrics``: likes, comments, saves, shares, views, reach), answered as Graph answers field
expansion on the lists (``GET /{page-id}/posts`` or ``/feed``, ``GET /{ig-user-id}/media``): ``shares``
``{"count"}`` (left out at 0), ``reactions|comments.summary(total_count).limit(0)`` ``{"data": [], "summary":
{"total_count"}}``, ``insights.metric(...)`` ``{"data": [{name, period: lifetime, values: [{value}], ...}]}``
(post metrics: post_media_view, post_total_media_view_unique...; media: views, reach, saved, shares...; a
refused one fails the whole call). ``since``/``until`` select by creation time (both ends included), pages of
up to 100 by the ``after`` cursor, and ``paging.next`` carries the access token, as Graph's does. Unknown
fields answer "Tried accessing nonexisting field".

Layout: ``protocol`` (error codes and texts, statuses, metric sets), ``server`` (``FakeGraph``: state and test
controls), ``wire`` (routing by node type, tokens, handlers, middleware).
"""
from tests.fakes.fake_graph.protocol import (ERRORS, IG_DOCS, IG_MEDIA_METRICS, IG_METRICS, PAGE_METRICS,
                                             POST_METRICS, RETIRED_IG_METRICS, RETIRED_PAGE_METRICS,
                                             RETIRED_POST_METRICS, STATUS_TEXT, GraphError)
from tests.fakes.fake_graph.server import FakeGraph

__all__ = ["ERRORS", "IG_DOCS", "IG_MEDIA_METRICS", "IG_METRICS", "PAGE_METRICS", "POST_METRICS",
           "RETIRED_IG_METRICS", "RETIRED_PAGE_METRICS", "RETIRED_POST_METRICS", "STATUS_TEXT", "FakeGraph",
           "GraphError"]
