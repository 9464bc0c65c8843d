"""tests/fakes/fake_graph.py driven over the wire with ``requests``, the way a Graph client talks to Meta."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.fakes.fake_graph import IG_DOCS, FakeGraph


@pytest.fixture
def graph():
    with FakeGraph(polls_in_progress=2) as server:
        server.session = requests.Session()
        server.session.trust_env = False  # loopback only, whatever the environment's proxies say
        yield server
        server.session.close()


def call(graph: FakeGraph, method: str, path: str, token: str | None = None, **params) -> requests.Response:
    if token is not None:
        params["access_token"] = token
    kwargs = {"params": params} if method == "GET" else {"data": params}
    return graph.session.request(method, f"{graph.base_url}/{path}", timeout=5, **kwargs)


def error_of(response: requests.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["fbtrace_id"]
    return body["error"]


def usage(response: requests.Response, header: str) -> dict:
    value = json.loads(response.headers[header])
    return next(iter(value.values()))[0] if header == "X-Business-Use-Case-Usage" else value


def test_page_token_from_user_token_then_post_and_reconcile_by_text(graph):
    accounts = call(graph, "GET", "me/accounts", graph.user_token,
                    fields="id,name,access_token,instagram_business_account")
    assert accounts.status_code == 200
    page = accounts.json()["data"][0]
    assert page == {"id": graph.page_id, "name": "Acme Studio", "access_token": graph.page_token(),
                    "instagram_business_account": {"id": graph.ig_user_id}}
    assert set(json.loads(accounts.headers["X-App-Usage"])) == {"call_count", "total_time", "total_cputime"}

    refused = call(graph, "POST", f"{graph.page_id}/feed", graph.user_token, message="hello")
    assert (refused.status_code, error_of(refused)["code"]) == (400, 190)
    assert error_of(refused)["message"] == "(#190) This method must be called with a Page Access Token"
    wrong_node = call(graph, "GET", "me/accounts", page["access_token"])
    assert error_of(wrong_node)["message"] == "(#100) Tried accessing nonexisting field (accounts) on node type (Page)"

    posted = call(graph, "POST", f"{graph.page_id}/feed", page["access_token"], message="Spring menu is live",
                  link="https://acme.example/menu")
    assert posted.status_code == 200
    post_id = posted.json()["id"]
    assert post_id.startswith(graph.page_id + "_")
    assert usage(posted, "X-Page-Usage")["call_count"] >= 1
    assert usage(posted, "X-Business-Use-Case-Usage")["type"] == "pages"
    again = call(graph, "POST", f"{graph.page_id}/feed", page["access_token"], message="Spring menu is live",
                 link="https://acme.example/menu")
    assert error_of(again) | {"fbtrace_id": "-"} == {"message": "(#506) Duplicate status message",
                                                     "type": "OAuthException", "code": 506, "fbtrace_id": "-"}

    graph.seed_post("An older post", created=datetime.now(timezone.utc) - timedelta(days=3))
    feed = call(graph, "GET", f"{graph.page_id}/feed", page["access_token"], fields="id,message,created_time",
                limit=1)
    first = feed.json()
    assert first["data"][0]["id"] == post_id and first["data"][0]["message"] == "Spring menu is live"
    assert first["data"][0]["created_time"].endswith("+0000")
    rest = graph.session.get(first["paging"]["next"], params={"access_token": page["access_token"]}).json()
    assert [p["message"] for p in rest["data"]] == ["An older post"] and "next" not in rest["paging"]
    assert graph.count("POST /{page-id}/feed") == 3 and graph.count("GET /{page-id}/feed") == 2


def test_photo_post(graph):
    token = graph.page_token()
    photo = call(graph, "POST", f"{graph.page_id}/photos", token, url="https://cdn.acme.example/a.jpg",
                 caption="Fresh from the oven").json()
    assert set(photo) == {"id", "post_id"} and photo["post_id"].startswith(graph.page_id + "_")
    assert graph.posts()[0]["message"] == "Fresh from the oven" and graph.posts()[0]["photo_id"] == photo["id"]
    missing = call(graph, "POST", f"{graph.page_id}/photos", token, caption="no picture")
    assert error_of(missing)["code"] == 324


def test_instagram_container_polls_to_finished_then_publishes(graph):
    ig, token = graph.ig_user_id, graph.user_token
    container = call(graph, "POST", f"{ig}/media", token, image_url="https://cdn.acme.example/a.jpg",
                     caption="Launch day").json()["id"]
    early = call(graph, "POST", f"{ig}/media_publish", token, creation_id=container)
    err = error_of(early)
    assert (err["code"], err["error_subcode"], err["message"]) == (9007, 2207027, "Media ID is not available")
    assert err["error_user_msg"] == "The media is not ready for publishing, please wait for a moment"

    polls = [call(graph, "GET", container, token, fields="status_code,status").json() for _ in range(3)]
    assert [p["status_code"] for p in polls] == ["IN_PROGRESS", "IN_PROGRESS", "FINISHED"]
    assert polls[0] == {"status_code": "IN_PROGRESS", "status": "In Progress: Media is still being processed.",
                        "id": container}
    assert polls[2]["status"] == "Finished: Media has been uploaded and it is ready to be published."
    assert usage(polls_response := call(graph, "GET", container, token, fields="status_code"),
                 "X-Business-Use-Case-Usage")["type"] == "instagram"
    assert polls_response.json()["status_code"] == "FINISHED"

    media_id = call(graph, "POST", f"{ig}/media_publish", token, creation_id=container).json()["id"]
    assert graph.container(container)["status"] == "PUBLISHED"
    listing = call(graph, "GET", f"{ig}/media", token, fields="id,caption,permalink,timestamp").json()["data"]
    assert listing[0]["id"] == media_id and listing[0]["caption"] == "Launch day"
    assert listing[0]["permalink"].startswith("https://www.instagram.com/p/")
    single = call(graph, "GET", media_id, graph.page_token(), fields="permalink,media_product_type").json()
    assert single["media_product_type"] == "FEED" and single["permalink"] == listing[0]["permalink"]
    twice = call(graph, "POST", f"{ig}/media_publish", token, creation_id=container)
    assert error_of(twice)["code"] == 100 and len(graph.media()) == 1


def test_instagram_container_error_and_expiry(graph):
    ig, token = graph.ig_user_id, graph.user_token
    graph.next_container("ERROR", polls=1, error_code=2207052)
    reel = call(graph, "POST", f"{ig}/media", token, video_url="https://cdn.acme.example/r.mp4",
                media_type="REELS", caption="Behind the scenes").json()["id"]
    statuses = [call(graph, "GET", reel, token, fields="status_code,status").json() for _ in range(2)]
    assert [s["status_code"] for s in statuses] == ["IN_PROGRESS", "ERROR"]
    assert statuses[1]["status"] == "Error: Media upload has failed with error code 2207052"
    assert error_of(call(graph, "POST", f"{ig}/media_publish", token, creation_id=reel))["code"] == 9007

    graph.next_container("EXPIRED", polls=0)
    stale = call(graph, "POST", f"{ig}/media", token, image_url="https://cdn.acme.example/b.jpg").json()["id"]
    assert call(graph, "GET", stale, token, fields="status_code").json() == {"status_code": "EXPIRED", "id": stale}
    no_type = call(graph, "POST", f"{ig}/media", token, video_url="https://cdn.acme.example/r.mp4")
    assert error_of(no_type)["code"] == 100
    nothing = call(graph, "POST", f"{ig}/media", token, caption="no media")
    assert error_of(nothing)["message"] == "(#100) The parameter image_url is required."
    assert graph.media() == []


def test_content_publishing_limit(graph):
    ig, token = graph.ig_user_id, graph.user_token
    limit = call(graph, "GET", f"{ig}/content_publishing_limit", token, fields="config,quota_usage").json()
    assert limit == {"data": [{"config": {"quota_total": 50, "quota_duration": 86400}, "quota_usage": 0}]}
    graph.set_quota_usage(50)
    assert call(graph, "GET", f"{ig}/content_publishing_limit", token).json() == {"data": [{"quota_usage": 50}]}
    graph.polls_in_progress = 0
    container = call(graph, "POST", f"{ig}/media", token, image_url="https://cdn.acme.example/c.jpg").json()["id"]
    call(graph, "GET", container, token, fields="status_code")
    err = error_of(call(graph, "POST", f"{ig}/media_publish", token, creation_id=container))
    assert (err["code"], err["error_subcode"]) == (9, 2207042)
    assert err["error_user_msg"] == ("You reached maximum number of posts that is allowed to be published by "
                                     "Content Publishing API.")


def test_page_insights_and_retired_metrics(graph):
    token = graph.page_token()
    today = datetime.now(timezone.utc).date()
    graph.set_insight(graph.page_id, "page_media_view", {today - timedelta(days=2): 40, today - timedelta(days=1): 55})
    ok = call(graph, "GET", f"{graph.page_id}/insights", token, metric="page_media_view,page_follows", period="day",
              since=str(today - timedelta(days=2)), until=str(today)).json()
    views = ok["data"][0]
    assert views["name"] == "page_media_view" and views["id"] == f"{graph.page_id}/insights/page_media_view/day"
    assert [v["value"] for v in views["values"]] == [40, 55]
    assert views["values"][0]["end_time"] == f"{today - timedelta(days=1)}T08:00:00+0000"

    retired = call(graph, "GET", f"{graph.page_id}/insights", token, metric="page_media_view,page_impressions",
                   period="day")
    assert retired.status_code == 400
    assert error_of(retired)["code"] == 100
    # Graph's own words for a retired Page metric; it does not say which name it refused.
    assert error_of(retired)["message"] == "(#100) The value must be a valid insights metric"
    assert graph.refused_metrics == [(graph.page_id, "page_impressions", "retired")]
    with_user_token = call(graph, "GET", f"{graph.page_id}/insights", graph.user_token, metric="page_follows")
    assert error_of(with_user_token)["code"] == 190
    none = call(graph, "GET", f"{graph.page_id}/insights", token)
    assert (error_of(none)["code"], error_of(none)["error_subcode"]) == (3001, 1504028)


def test_instagram_insights_name_the_refused_metric(graph):
    ig, token = graph.ig_user_id, graph.user_token
    impressions = error_of(call(graph, "GET", f"{ig}/insights", token, metric="reach,impressions", period="day"))
    assert impressions["code"] == 100 and "the impressions metric is no longer supported" in impressions["message"]
    assert IG_DOCS in impressions["message"]
    unknown = error_of(call(graph, "GET", f"{ig}/insights", token, metric="reach,video_views", period="day"))
    assert unknown["message"].startswith("(#100) metric[1] must be one of the following values: reach, ")
    total_only = error_of(call(graph, "GET", f"{ig}/insights", token, metric="views,reach", period="day"))
    assert total_only["message"] == ("(#100) The following metrics (views) should be specified with parameter "
                                     "metric_type=total_value")

    graph.set_insight(ig, "views", 30)
    graph.set_insight(ig, "reach", {datetime.now(timezone.utc).date() - timedelta(days=1): 12})
    totals = call(graph, "GET", f"{ig}/insights", token, metric="views,reach", period="day",
                  metric_type="total_value").json()["data"]
    assert [(m["name"], m["total_value"]["value"]) for m in totals] == [("views", 60), ("reach", 12)]
    series = call(graph, "GET", f"{ig}/insights", token, metric="reach", period="day").json()["data"][0]
    assert [v["value"] for v in series["values"]] == [0, 12]


def test_token_errors_appsecret_proof_and_version(graph):
    expired = graph.issue_user_token()
    graph.expire_token(expired)
    response = call(graph, "GET", "me/accounts", expired)
    err = error_of(response)
    assert (response.status_code, err["code"], err["error_subcode"], err["type"]) == (400, 190, 463, "OAuthException")
    assert err["message"].startswith("Error validating access token: Session has expired on ")
    assert response.headers["WWW-Authenticate"].startswith('OAuth "Facebook Platform" "invalid_token" "Error valid')
    garbage = error_of(call(graph, "GET", "me/accounts", "EAAGnot-a-token"))
    assert (garbage["code"], garbage["message"]) == (190, "Invalid OAuth access token - Cannot parse access token")
    changed = graph.issue_user_token()
    graph.invalidate_token(changed)
    assert error_of(call(graph, "GET", "me", changed))["error_subcode"] == 460
    assert error_of(call(graph, "GET", "me/accounts"))["code"] == 2500

    proof = hmac.new(graph.app_secret.encode(), graph.user_token.encode(), hashlib.sha256).hexdigest()
    assert call(graph, "GET", "me", graph.user_token, appsecret_proof=proof).status_code == 200
    assert error_of(call(graph, "GET", "me", graph.user_token, appsecret_proof="0" * 64))["code"] == 100
    old = graph.session.get(f"{graph.url}/v19.0/me/accounts", params={"access_token": graph.user_token})
    assert error_of(old)["code"] == 2500
    missing = error_of(call(graph, "GET", "424242", graph.user_token))
    assert (missing["code"], missing["error_subcode"]) == (100, 33)
    assert missing["message"].startswith("Unsupported get request. Object with ID '424242' does not exist")


@pytest.mark.parametrize("name, code, message, header", [
    ("app_rate_limit", 4, "(#4) Application request limit reached", "X-App-Usage"),
    ("user_rate_limit", 17, "(#17) User request limit reached", "X-App-Usage"),
    ("page_rate_limit", 32, "(#32) Page request limit reached", "X-Page-Usage"),
    ("custom_rate_limit", 613, "(#613) Calls to this api have exceeded the rate limit.", "X-Business-Use-Case-Usage"),
])
def test_rate_limit_errors_carry_usage_headers(graph, name, code, message, header):
    graph.fail("POST /{page-id}/feed", name, minutes=7)
    response = call(graph, "POST", f"{graph.page_id}/feed", graph.page_token(), message="throttled")
    assert (response.status_code, error_of(response)["code"], error_of(response)["message"]) == (400, code, message)
    numbers = usage(response, header)
    assert numbers["call_count"] == numbers["total_time"] == numbers["total_cputime"] == 100
    if header != "X-App-Usage":  # X-App-Usage has no estimate; the Page and BUC headers do
        assert numbers["estimated_time_to_regain_access"] == 7
    assert graph.posts() == []
    assert call(graph, "POST", f"{graph.page_id}/feed", graph.page_token(), message="later").status_code == 200


def test_throttle_until_cleared(graph):
    graph.throttle(32, minutes=15)
    for _ in range(2):
        limited = call(graph, "GET", f"{graph.page_id}/feed", graph.page_token())
        assert error_of(limited)["code"] == 32
        assert usage(limited, "X-Page-Usage")["estimated_time_to_regain_access"] == 15
    graph.clear_throttle()
    assert call(graph, "GET", f"{graph.page_id}/feed", graph.page_token()).status_code == 200


def test_policy_block_server_errors_and_the_nth_call(graph):
    token = graph.page_token()
    graph.blocked_terms.add("scam.example")
    blocked = error_of(call(graph, "POST", f"{graph.page_id}/feed", token, message="win", link="https://scam.example"))
    assert blocked["code"] == 368
    assert blocked["message"] == "(#368) The action attempted has been deemed abusive or is otherwise disallowed"

    graph.fail("POST /{page-id}/feed", 500, nth=2)
    graph.fail("GET /{page-id}/feed", 503)
    assert call(graph, "POST", f"{graph.page_id}/feed", token, message="one").status_code == 200
    down = call(graph, "POST", f"{graph.page_id}/feed", token, message="two")
    assert (down.status_code, error_of(down)["code"], error_of(down)["message"]) == \
        (500, 1, "An unknown error has occurred.")
    flaky = call(graph, "GET", f"{graph.page_id}/feed", token)
    assert (flaky.status_code, error_of(flaky)["code"], error_of(flaky)["is_transient"]) == (503, 2, True)
    assert call(graph, "POST", f"{graph.page_id}/feed", token, message="three").status_code == 200
    assert [p["message"] for p in graph.posts()] == ["three", "one"]


def test_outcome_unknown_after_acceptance_and_hold(graph):
    token = graph.page_token()
    graph.fail("POST /{page-id}/feed", None, after_accept=True)  # posted, then the connection drops
    with pytest.raises(requests.ConnectionError):
        call(graph, "POST", f"{graph.page_id}/feed", token, message="did it land?")
    feed = call(graph, "GET", f"{graph.page_id}/feed", token, fields="message").json()["data"]
    assert [p["message"] for p in feed] == ["did it land?"]

    ig = graph.ig_user_id
    graph.polls_in_progress = 0
    container = call(graph, "POST", f"{ig}/media", token, image_url="https://cdn.acme.example/d.jpg",
                     caption="held").json()["id"]
    call(graph, "GET", container, token, fields="status_code")
    hold = graph.hold("POST /{ig-user-id}/media_publish", after_accept=True)
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.setdefault(
        "response", call(graph, "POST", f"{ig}/media_publish", token, creation_id=container)), daemon=True)
    thread.start()
    assert hold.arrived.wait(5)
    assert [m["caption"] for m in graph.media()] == ["held"] and outcome == {}
    assert hold.body["creation_id"] == container
    hold.release()
    thread.join(5)
    assert outcome["response"].json()["id"] == graph.media()[0]["id"]
