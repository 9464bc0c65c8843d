"""The Browser MCP server (8081) in real Chromium against local pages shaped like WhatsApp Web and
LinkedIn: reading pages without approval, writes behind the gate and exactly once, the URL policy,
bounded automations, each site its own channel in /health (not_logged_in, selector_missing), the
selectors self-test, and the official `mcp` client."""
from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import yaml
from mcp.client import Client

from core.approval.approvals import Approvals
from core.config import Settings
from core.documents import Document
from core.state import StateStore
from core.vault import Vault
from mcp_servers.browser.config import DEFAULT_SELECTORS, BrowserConfig
from mcp_servers.browser.engine import BrowserEngine
from mcp_servers.browser_server import TOOLS, build_app
from tests.conftest import ROOT, md_files, wait_until
from tests.demo_service import ServerThread
from tests.fakes.fake_sites import FakeSites, loopback_resolver

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-server")
    selectors = tmp / "selectors.yaml"
    shutil.copyfile(DEFAULT_SELECTORS, selectors)
    with FakeSites() as sites:
        env = {"VAULT_PATH": str(tmp / "vault"), "DRY_RUN": "false", "BROWSER_MCP_PORT": "0"}
        settings = Settings.from_env(env)
        config = BrowserConfig(profile_dir=tmp / "profiles", executable=CHROMIUM, allowed_hosts=("127.0.0.1",),
                               only_allowed=True, selectors_file=selectors, whatsapp_url=f"{sites.url}/wa",
                               linkedin_url=f"{sites.url}/li", nav_timeout_s=10, element_timeout_s=3)
        engine = BrowserEngine(config, resolver=loopback_resolver)
        with ServerThread(build_app(settings, engine=engine)) as server:
            vault, state = Vault(settings.vault_path), StateStore(settings.state_db)
            wait_until(lambda: requests.get(f"{server.url}/health", timeout=10).json()["checks"]["web"]
                       ["status"] != "not_configured", message="the browser to start")
            yield SimpleNamespace(url=server.url, sites=sites, vault=vault, state=state, selectors=selectors,
                                  approvals=Approvals(vault, state))


@pytest.fixture
def b(browser):
    browser.sites.reset()
    shutil.copyfile(DEFAULT_SELECTORS, browser.selectors)
    for path in md_files(browser.vault.root / "Pending_Approval"):
        path.unlink()
    return browser


_grants = iter(range(1, 10_000))


def owner_grant(s, skill: str, action: str, params: dict) -> str:
    row = s.approvals.request(task_id=f"t-browser-{next(_grants)}", step_no=1, skill=skill, action=action,
                              params=params, text_param="text" if "text" in params else None, risk="medium",
                              reason="test", subject=action)
    approved = s.vault.move(s.vault.root / "Pending_Approval" / row["file_name"], s.vault.folder("Approved"))
    return s.approvals.accept(approved).id


def post(s, path: str, body: dict) -> requests.Response:
    return requests.post(f"{s.url}{path}", json=body, timeout=60)


def health(s) -> dict:
    return requests.get(f"{s.url}/health", timeout=10).json()["checks"]


def test_browse_and_scrape_local_pages_and_a_screenshot_saved_in_the_vault(b):
    page = post(b, "/browse-web", {"url": f"{b.sites.url}/pages/article.html", "screenshot": True}).json()["data"]
    assert page["status"] == 200 and page["title"] and page["text"]
    shot = b.vault.root / page["screenshot"]
    assert page["screenshot"].startswith("Attachments/screenshot_") and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scraped = requests.get(f"{b.url}/scrape-content", timeout=60,
                           params={"url": f"{b.sites.url}/pages/list.html", "selectors": json.dumps({"h": "h1"})}).json()
    assert scraped["success"] and scraped["data"]["fields"]["h"]


def test_a_reading_automation_runs_without_approval_and_one_that_types_needs_it(b):
    form = f"{b.sites.url}/pages/form.html"
    reads = [{"action": "goto", "url": form}, {"action": "wait_for", "selector": "#name"},
             {"action": "extract", "selector": "h1"}, {"action": "screenshot"}, {"action": "extract", "selector": "label"}]
    ran = post(b, "/automate-browser", {"steps": reads, "timeout_s": 30}).json()["data"]
    assert ran["completed"] and [s["ok"] for s in ran["steps"]] == [True] * 5
    assert ran["steps"][3]["value"]["screenshot"].startswith("Attachments/")
    writes = [{"action": "goto", "url": form}, {"action": "fill", "selector": "#name", "value": "Ada"},
              {"action": "click", "selector": "#go"}, {"action": "wait_for", "selector": "#out"},
              {"action": "extract", "selector": "#out"}]
    asked = post(b, "/automate-browser", {"steps": writes})
    assert asked.status_code == 403 and asked.json()["error_code"] == "APPROVAL_REQUIRED"
    [request] = md_files(b.vault.root / "Pending_Approval")
    assert Document.parse(request.read_text("utf-8")).meta["skill"] == "browser_skill"
    grant = owner_grant(b, "browser_skill", "automate_browser", {"steps": writes})
    done = post(b, "/automate-browser", {"steps": writes, "grant_id": grant}).json()["data"]
    assert done["completed"] and done["steps"][4]["value"] == ["Hello, Ada!"]


def test_refused_urls_and_a_step_list_over_its_limits_get_clear_errors(b):
    canary = "http://127.0.0.2:9"  # a loopback address off the allow-list: refused before any connection
    for url, why in [("file:///etc/passwd", "scheme file: is not allowed"), ("chrome://settings", "chrome:"),
                     (f"{canary}/x", "127.0.0.2"), ("http://localhost:9/", "localhost")]:
        answer = post(b, "/browse-web", {"url": url})
        assert answer.status_code == 400 and answer.json()["error_code"] == "VALIDATION_ERROR", url
        assert why in answer.json()["error"], answer.json()
    goto = {"action": "goto", "url": f"{b.sites.url}/pages/form.html"}
    too_many = post(b, "/automate-browser", {"steps": [goto] + [{"action": "extract", "selector": "h1"}] * 25})
    assert too_many.status_code == 400 and "steps" in too_many.json()["error"] and "25" in too_many.json()["error"]
    too_long = post(b, "/automate-browser", {"steps": [goto], "timeout_s": 3600})
    assert too_long.status_code == 400 and "timeout_s" in too_long.json()["error"]
    shots = post(b, "/automate-browser", {"steps": [goto] + [{"action": "screenshot"}] * 4})
    assert shots.status_code == 400 and "4 screenshots is over the limit of 3" in shots.json()["error"]
    assert b.sites.hits == []  # nothing of it reached a page


def test_whatsapp_unread_and_a_reply_sent_exactly_once(b):
    unread = requests.get(f"{b.url}/whatsapp/unread", timeout=60).json()["data"]
    chats = {c["chat"]: c for c in unread["chats"]}
    assert set(chats) == {"Jane Doe", "Accounting Team", "Supplier Ltd"}  # pinned without a badge: not new
    assert [m["text"] for m in chats["Jane Doe"]["messages"]] == ["Can you send the invoice?", "It's urgent, thanks"]
    assert chats["Accounting Team"]["muted"] is True
    params = {"chat": "Jane Doe", "text": "Sending it now, Jane."}
    asked = post(b, "/whatsapp/send", params)
    assert asked.status_code == 403 and b.sites.wa_sent == []
    grant = owner_grant(b, "whatsapp_skill", "send_whatsapp_message", params)
    first = post(b, "/whatsapp/send", {**params, "grant_id": grant}).json()
    again = post(b, "/whatsapp/send", {**params, "grant_id": grant}).json()
    assert first["success"] and again["data"] == first["data"]
    assert b.sites.wa_sent == [("Jane Doe", "Sending it now, Jane.")]
    wait_until(lambda: health(b)["whatsapp"]["state"] == "ok", message="health")


def test_a_logged_out_whatsapp_pauses_whatsapp_alone_and_says_so(b):
    b.sites.whatsapp_variant = "logged_out"
    answer = requests.get(f"{b.url}/whatsapp/unread", params={"fresh": "true"}, timeout=60)
    assert answer.status_code == 502 and answer.json()["error_code"] == "AUTH_ERROR"
    assert answer.json()["error"].startswith("not_logged_in: whatsapp")
    checks = wait_until(lambda: (c := health(b))["whatsapp"]["state"] == "auth_error" and c,
                        timeout=30, message="health to say it (read at the next heartbeat)")
    assert "login whatsapp" in checks["whatsapp"]["detail"]
    assert checks["linkedin"]["status"] == "healthy"  # one site logged out never pauses another
    b.sites.whatsapp_variant = "en"
    requests.get(f"{b.url}/whatsapp/unread", params={"fresh": "true"}, timeout=60)
    wait_until(lambda: health(b)["whatsapp"]["state"] == "ok", timeout=30, message="whatsapp back")


def test_a_missing_selector_is_named_by_the_error_health_and_the_self_test(b):
    data = yaml.safe_load(b.selectors.read_text("utf-8"))
    data["sites"]["whatsapp"]["elements"]["composer"] = ['footer [data-testid="composer-that-is-gone"]']
    b.selectors.write_text(yaml.safe_dump(data), "utf-8")
    params = {"chat": "Jane Doe", "text": "Never typed"}
    answer = post(b, "/whatsapp/send", {**params, "grant_id": owner_grant(b, "whatsapp_skill",
                                                                          "send_whatsapp_message", params)})
    assert answer.status_code == 502 and answer.json()["error"].startswith("selector_missing: whatsapp.composer")
    checks = wait_until(lambda: (c := health(b))["whatsapp"]["state"] == "changed" and c, message="health")
    assert "whatsapp.composer" in checks["whatsapp"]["detail"]
    report = requests.get(f"{b.url}/browser/check", params={"site": "whatsapp"}, timeout=60).json()["data"]
    assert report["missing"] == ["composer"] and b.sites.wa_sent == []


def test_a_linkedin_post_goes_out_once_and_an_image_is_refused_clearly(b):
    params = {"platform": "linkedin", "text": "We are hiring a junior bookkeeper."}
    grant = owner_grant(b, "linkedin_skill", "social_media_post", params)
    first = post(b, "/social-media-post", {**params, "grant_id": grant}).json()
    again = post(b, "/social-media-post", {**params, "grant_id": grant}).json()
    assert first["success"] and first["data"]["urn"].startswith("urn:li:activity:")
    assert again["data"] == first["data"] and b.sites.li_posted == [params["text"]]
    pic = {**params, "image": "https://cdn.example.com/a.jpg"}
    refused = post(b, "/social-media-post", {**pic, "grant_id": owner_grant(b, "linkedin_skill", "social_media_post", pic)})
    assert refused.status_code == 400 and "image" in refused.json()["error"]


def test_the_official_client_lists_and_calls_the_browser_tools(b):
    async def scenario():
        async with Client(f"{b.url}/mcp") as client:
            listing = await client.list_tools()
            read = await client.call_tool("browse_web", {"url": f"{b.sites.url}/pages/article.html"})
            write = await client.call_tool("send_whatsapp_message", {"chat": "Jane Doe", "text": "Hello"})
            return listing, read, write
    listing, read, write = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert {t.name for t in listing.tools} == {t.name for t in TOOLS}
    assert read.is_error is False and read.structured_content["data"]["status"] == 200
    assert write.is_error is True and write.structured_content["error_code"] == "APPROVAL_REQUIRED"
    assert b.sites.wa_sent == []


def test_browser_skills_checked_in_schemas_are_the_servers(b):
    listed = {t["name"]: t["inputSchema"] for t in requests.post(
        f"{b.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10).json()["result"]["tools"]}
    for skill in ("whatsapp_skill", "linkedin_skill", "browser_skill"):
        shipped = json.loads((ROOT / ".qwen" / "skills" / skill / "tools.schema.json").read_text("utf-8"))
        for name, schema in shipped.items():
            assert schema["properties"] == {k: v for k, v in listed[name]["properties"].items()
                                            if k not in ("grant_id", "task_id")}, name
            assert schema.get("required") == listed[name].get("required")
