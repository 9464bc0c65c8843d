"""The Odoo connector against the protocol-faithful fake (tests/fakes/fake_odoo): JSON-RPC on 17/18/19 and
JSON-2 on 19, the error family on each transport, retries for reads only, the auth backoff, read_group's one shape.

No sleeps: the retry sleep and the auth clock are injected; the fake's holds and down()/up() make the failures.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
import requests

from core.errors import AuthError, ConfigError, NotConfiguredError, TransientError, ValidationError
from odoo_integration.auth import AuthGate
from odoo_integration.config import OdooConfig
from odoo_integration.connector import OdooConnector
from odoo_integration.errors import (OdooAccessError, OdooAuthError, OdooConnectionError, OdooError,
                                     OdooNotFoundError, OdooServerError, OdooValidationError)
from tests.fakes.fake_odoo import FakeOdoo

TODAY = date(2026, 11, 20)
PASSWORD = "Adm1n-Pw-4471-zq"  # distinctive, so a leak into any message is caught
# (version, use an API key): JSON-RPC on every version, JSON-2 on 19
TRANSPORTS = [(17, False), (18, False), (19, False), (19, True)]
TRANSPORT_IDS = ["jsonrpc17", "jsonrpc18", "jsonrpc19", "json2"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def start() -> Iterator[Callable[..., FakeOdoo]]:
    fakes: list[FakeOdoo] = []

    def make(version: int = 17, **kw) -> FakeOdoo:
        fake = FakeOdoo(version, today=TODAY, password=PASSWORD, **kw).start()
        fakes.append(fake)
        return fake
    yield make
    for fake in fakes:
        fake.stop()


class Harness:
    """A connector on a fake, with the injected clock and a record of the retry sleeps."""

    def __init__(self, fake: FakeOdoo, *, key: bool | str = False, password: str | None = PASSWORD,
                 username: str | None = "admin", db: str = "odoo", timeout: float = 5.0,
                 sleep: Callable[[float], object] | None = None) -> None:
        self.fake, self.clock, self.sleeps = fake, Clock(), []
        api_key = (fake.api_key if key is True else key) or None
        self.config = OdooConfig(url=fake.url, db=db, username=username, password=password, api_key=api_key,
                                 timeout=timeout)

        def record(seconds: float) -> None:
            self.sleeps.append(seconds)
            if sleep:
                sleep(seconds)
        self.odoo = OdooConnector(self.config, session=requests.Session(), clock=self.clock, sleep=record)

    def hits(self, path: str | None = None) -> int:
        """HTTP requests that reached the fake (refused ones included), optionally to one path."""
        return sum(1 for _method, p in list(self.fake.requests) if path is None or p == path or
                   (path.endswith("*") and p.startswith(path[:-1])))

    def clean(self, err: BaseException) -> BaseException:
        """No secret and no server traceback in what the owner may see."""
        for text in (str(err), repr(err), str(getattr(err, "odoo_message", "") or "")):
            for secret in (PASSWORD, self.fake.api_key, *self.config.secrets):
                assert secret not in text
            assert "Traceback" not in text and 'File "' not in text
        return err


@pytest.fixture(params=TRANSPORTS, ids=TRANSPORT_IDS)
def on(request, start) -> Harness:
    version, key = request.param
    return Harness(start(version), key=key)


def seed_ledger(fake: FakeOdoo) -> dict[str, int]:
    """Customer invoices and credit notes over a month boundary, paid, partial, draft and cancelled."""
    ids = {"azure": fake.add_partner("Azure Interior", is_company=True, email="azure@example.com"),
           "deco": fake.add_partner("Deco Addict", is_company=True, email="deco@example.com")}
    ids["inv1"] = fake.add_invoice(ids["azure"], [("Consulting", 2, 500.0, [1])], invoice_date="2026-10-31")
    ids["inv2"] = fake.add_invoice(ids["azure"], [("Support", 1, 200.0)], invoice_date="2026-11-01")
    ids["inv3"] = fake.add_invoice(ids["deco"], [("Desk", 3, 100.0, [1])], invoice_date="2026-11-10",
                                   payment_state="paid")
    ids["inv4"] = fake.add_invoice(ids["deco"], [("Chair", 4, 50.0)], invoice_date="2026-11-30",
                                   payment_state="partial", amount_paid=50.0)
    ids["draft"] = fake.add_invoice(ids["azure"], [("Draft work", 1, 999.0)], invoice_date="2026-11-15",
                                    state="draft")
    ids["cancel"] = fake.add_invoice(ids["azure"], [("Cancelled", 1, 77.0)], invoice_date="2026-11-16",
                                     state="cancel")
    ids["refund"] = fake.add_invoice(ids["azure"], [("Refund", 1, 100.0)], invoice_date="2026-12-01",
                                     move_type="out_refund")
    return ids


SALES = [("move_type", "in", ["out_invoice", "out_refund"]), ("state", "=", "posted")]


# --- configuration -------------------------------------------------------------------------------------------


def test_config_from_env_and_is_configured():
    env = {"ODOO_URL": "https://books.example.com/", "ODOO_DB": "prod", "ODOO_USERNAME": "owner@example.com",
           "ODOO_PASSWORD": PASSWORD, "ODOO_TIMEOUT_SECONDS": "12.5"}
    config = OdooConfig.from_env(env)
    assert (config.url, config.db, config.username, config.password, config.api_key, config.timeout) == \
        ("https://books.example.com", "prod", "owner@example.com", PASSWORD, None, 12.5)
    assert config.is_configured()
    assert OdooConfig.from_env({"ODOO_URL": "https://b.example.com", "ODOO_DB": "p", "ODOO_API_KEY": "k" * 40}) \
        .is_configured()
    assert not OdooConfig.from_env({"ODOO_URL": "https://b.example.com", "ODOO_DB": "p", "ODOO_USERNAME": "u"}) \
        .is_configured()
    assert not OdooConfig.from_env({"ODOO_DB": "p", "ODOO_API_KEY": "k"}).is_configured()
    assert OdooConfig.from_env({}).timeout == 30
    with pytest.raises(ConfigError, match="ODOO_TIMEOUT_SECONDS"):
        OdooConfig.from_env({"ODOO_TIMEOUT_SECONDS": "soon"})
    key = "f" * 40
    text = repr(OdooConfig(url="https://b.example.com", db="p", username="u", password=PASSWORD, api_key=key))
    assert PASSWORD not in text and key not in text and "password='<set>'" in text and "api_key='<set>'" in text


@pytest.mark.parametrize("url", ["https://mycompany.odoo.com", "https://erp.example.com:8443/odoo",
                                 "http://127.0.0.1:8069", "http://localhost:8069/", "http://[::1]:8069"])
def test_https_or_loopback_accepted(url):
    assert OdooConfig.from_env({"ODOO_URL": url}).url == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://erp.example.com", "http://10.0.0.5:8069", "ftp://127.0.0.1",
                                 "erp.example.com", f"https://admin:{PASSWORD}@erp.example.com",
                                 "https://erp.example.com/?db=x", "http://127.0.0.1:99999"])
def test_other_urls_refused_naming_the_variable(url):
    with pytest.raises(ConfigError) as err:
        OdooConfig.from_env({"ODOO_URL": url})
    assert "ODOO_URL" in str(err.value) and PASSWORD not in str(err.value)
    with pytest.raises(ConfigError):
        OdooConfig(url=url)  # constructed directly: the same rule


def test_not_configured(start):
    connector = OdooConnector(OdooConfig(url=start(17).url, db="odoo"))
    assert not connector.is_configured()
    with pytest.raises(NotConfiguredError):
        connector.probe()


# --- version and transport -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version,key,transport", [(17, False, "jsonrpc"), (17, True, "jsonrpc"),
                                                   (18, True, "jsonrpc"), (19, False, "jsonrpc"),
                                                   (19, True, "json2")])
def test_transport_chosen_by_key_and_version(start, version, key, transport):
    h = Harness(start(version), key=key)
    info = h.odoo.probe()
    assert info == {"version": f"{version}.0", "major": version, "edition": "community", "transport": transport,
                    "database": "odoo", "uid": 2}
    for _ in range(3):
        h.odoo.search_count("res.partner", [])
        h.odoo.server_info()
    # the version is asked once; a JSON-RPC login happens once
    assert h.fake.round_trips("version", "common") + h.hits("/web/version") == (2 if key and version < 19 else 1)
    if transport == "json2":
        assert h.hits("/jsonrpc") == 0 and h.hits("/web/version") == 1
        assert h.fake.round_trips(transport="json2") == 4  # context_get + 3 search_count
    else:
        assert h.fake.round_trips("authenticate", "common") == 1
        [login] = [c for c in h.fake.calls if c.method == "authenticate"]
        # on 17/18 an API key stands in for the password, as Odoo allows
        assert login.args[2] == (h.fake.api_key if key else PASSWORD)
        assert h.hits("/web/version") == (1 if key else 0)  # 404 before 19: then common.version


def test_enterprise_edition_is_reported(start):
    assert Harness(start(18, edition="enterprise")).odoo.server_info()["edition"] == "enterprise"


def test_call_uses_named_arguments_on_both_wires(start):
    for version, key in ((17, False), (19, True)):
        h = Harness(start(version), key=key)
        pid = h.odoo.call("res.partner", "create", vals_list=[{"name": "Ready Mat", "is_company": True}])
        assert pid == [pid[0]]  # a list on both transports
        assert h.odoo.call("res.partner", "write", ids=pid, vals={"email": "mat@example.com"}) is True
        rows = h.odoo.call("res.partner", "search_read", domain=[("email", "=ilike", "MAT@%")],
                           fields=["name", "email"], context={"lang": "en_US"})
        assert rows == [{"id": pid[0], "name": "Ready Mat", "email": "mat@example.com"}]
        assert h.odoo.read("res.partner", pid, ["name"]) == [{"id": pid[0], "name": "Ready Mat"}]
        create, write, search = [c for c in h.fake.calls if c.model == "res.partner"][:3]
        if key:
            assert (create.transport, create.args, create.kwargs) == \
                ("json2", None, {"vals_list": [{"name": "Ready Mat", "is_company": True}]})
            assert (write.args, write.kwargs) == (pid, {"vals": {"email": "mat@example.com"}})
            assert search.kwargs["context"] == {"lang": "en_US"}
        else:  # execute_kw: create's values and a record method's ids positionally, the rest by name
            assert (create.args, create.kwargs) == ([[{"name": "Ready Mat", "is_company": True}]], {})
            assert (write.args, write.kwargs) == ([pid], {"vals": {"email": "mat@example.com"}})
            assert search.args == [] and search.kwargs["context"] == {"lang": "en_US"}


# --- errors, per transport -------------------------------------------------------------------------------------


def test_validation_errors_carry_odoos_message(on):
    inv = on.fake.add_invoice("Azure Interior", amount=10.0)
    name = on.fake.read("account.move", inv, ["name"])[0]["name"]
    with pytest.raises(OdooValidationError) as err:
        on.odoo.action("account.move", "action_post", [inv])
    message = f"The entry {name} (id {inv}) is already posted."
    assert on.clean(err.value).odoo_message == message and str(err.value).endswith(message)
    assert err.value.odoo_name == "odoo.exceptions.UserError"
    partner = on.fake.add_partner("Loop Corp", is_company=True)
    with pytest.raises(OdooValidationError) as err:
        on.odoo.write("res.partner", [partner], {"parent_id": partner})
    assert on.clean(err.value).odoo_message == "You cannot create recursive Partner hierarchies."
    assert err.value.odoo_name == "odoo.exceptions.ValidationError"


def test_missing_record_and_unknown_model_are_not_found(on):
    with pytest.raises(OdooNotFoundError) as err:
        on.odoo.action("account.move", "action_post", [999])
    assert on.clean(err.value).odoo_message.startswith("Record does not exist or has been deleted.")
    with pytest.raises(OdooNotFoundError) as err:
        on.odoo.search_read("x.nope", [], ["name"])
    on.clean(err.value)
    with pytest.raises(OdooNotFoundError):
        on.odoo.call("res.partner", "nosuch", ids=[1])


def test_access_error_for_a_user_without_rights(start):
    for version, key in TRANSPORTS:
        fake = start(version)
        fake.add_user("viewer", "viewer-pw-9931", read_only=True)
        h = Harness(fake, username="viewer", password="viewer-pw-9931",
                    key=fake.new_api_key("viewer") if key else False)
        assert h.odoo.search_count("res.partner", []) >= 2  # reading is allowed
        with pytest.raises(OdooAccessError) as err:
            h.odoo.create("res.partner", {"name": "X"})
        assert err.value.status == 403 and not isinstance(err.value, AuthError)
        assert "You are not allowed to create 'Contact' (res.partner) records." in h.clean(err.value).odoo_message
        assert "viewer-pw-9931" not in str(err.value)


def test_other_server_errors_without_the_traceback(on):
    with pytest.raises(OdooServerError) as err:
        on.odoo.search_count("res.partner", [("bogus", "=", 1)])
    assert "Invalid field res.partner.bogus" in on.clean(err.value).odoo_message
    assert err.value.odoo_name == "builtins.ValueError" and err.value.code == "UPSTREAM_ERROR"


def test_a_secret_echoed_by_odoo_is_cut_out(on):
    with pytest.raises(OdooServerError) as err:  # Odoo's message names the "field": here, the password
        on.odoo.search_count("res.partner", [(PASSWORD, "=", 1)])
    assert "**REDACTED**" in on.clean(err.value).odoo_message


def test_wrong_database(start):
    with pytest.raises(OdooAuthError, match="ODOO_DB") as err:
        Harness(start(17), db="nodb").odoo.probe()
    assert "port 5432" not in str(err.value)
    with pytest.raises(OdooNotFoundError, match="ODOO_URL and ODOO_DB"):
        Harness(start(19), key=True, db="nodb").odoo.probe()


def test_not_odoo_at_that_url(start):
    fake = start(17)
    config = OdooConfig(url=f"{fake.url}/nothere", db="odoo", username="admin", password=PASSWORD)
    with pytest.raises(OdooNotFoundError, match="ODOO_URL"):
        OdooConnector(config, session=requests.Session()).probe()


# --- authentication and its backoff ------------------------------------------------------------------------------


def test_wrong_password_one_authentication_per_backoff_step(start):
    fake = start(17)
    h = Harness(fake, password="wrong-pass-5521")
    logins = lambda: fake.round_trips("authenticate", "common")  # noqa: E731
    with pytest.raises(OdooAuthError) as err:
        h.odoo.search_count("res.partner", [])
    assert logins() == 1 and err.value.retry_in == 30 and err.value.code == "AUTH_ERROR"
    assert "wrong-pass-5521" not in str(h.clean(err.value))
    sent = h.hits()
    for wait, then in ((30, 60), (60, 120), (120, 240)):
        h.clock.advance(wait - 1)
        with pytest.raises(OdooAuthError) as again:  # within the wait: not even a request
            h.odoo.create("res.partner", {"name": "never sent"})
        assert str(again.value) == str(err.value) and h.hits() == sent and again.value.retry_in == 1
        assert h.odoo.auth_retry_in() == 1
        h.clock.advance(1)
        with pytest.raises(OdooAuthError) as err:  # the one attempt of this step
            h.odoo.search_count("res.partner", [])
        sent = h.hits()
        assert err.value.retry_in == then
    assert logins() == 4 and h.sleeps == []  # auth errors are never retried by the read backoff
    fake.set_password("wrong-pass-5521")  # the owner fixes it (here: Odoo's side)
    h.clock.advance(240)
    assert h.odoo.search_count("res.partner", []) == 2 and h.odoo.auth_retry_in() is None
    assert logins() == 5
    assert h.odoo.search_count("res.partner", []) == 2 and logins() == 5  # uid cached
    assert fake.round_trips("create", "res.partner") == 0


def test_backoff_is_capped(start):
    fake = start(18)
    h = Harness(fake, password="nope-1234")
    waits = []
    for _ in range(8):
        with pytest.raises(OdooAuthError) as err:
            h.odoo.probe()
        waits.append(err.value.retry_in)
        h.clock.advance(err.value.retry_in)
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900]
    assert fake.round_trips("authenticate", "common") == 8


def test_password_changed_after_login(start):
    fake = start(19)
    h = Harness(fake)
    assert h.odoo.probe()["uid"] == 2
    fake.set_password("changed-by-someone-88")
    with pytest.raises(OdooAuthError) as err:  # the cached uid's execute_kw: AccessDenied
        h.odoo.search_read("res.partner", [], ["name"])
    assert err.value.odoo_name == "odoo.exceptions.AccessDenied" and h.sleeps == []
    sent = h.hits()
    with pytest.raises(OdooAuthError):
        h.odoo.search_read("res.partner", [], ["name"])
    assert h.hits() == sent
    fake.set_password(PASSWORD)
    h.clock.advance(30)
    assert len(h.odoo.search_read("res.partner", [], ["name"])) == 2
    assert fake.round_trips("authenticate", "common") == 2  # the first login, then one after the wait


def test_revoked_api_key_one_attempt_per_step(start):
    fake = start(19)
    key = fake.new_api_key()
    h = Harness(fake, key=key, password=None, username=None)
    assert h.odoo.probe()["transport"] == "json2"
    fake.revoke_api_key(key)
    with pytest.raises(OdooAuthError, match="ODOO_API_KEY") as err:
        h.odoo.search_count("res.partner", [])
    assert err.value.status == 401 and "Invalid apikey" in str(h.clean(err.value))
    assert key not in str(err.value)
    rejected = lambda: sum(1 for c in fake.calls if c.status == 401)  # noqa: E731
    sent = h.hits()
    h.clock.advance(29)
    for _ in range(5):
        with pytest.raises(OdooAuthError):
            h.odoo.search_count("res.partner", [])
    assert h.hits() == sent and rejected() == 1
    h.clock.advance(1)
    with pytest.raises(OdooAuthError) as err:
        h.odoo.create("res.partner", {"name": "X"})
    assert rejected() == 2 and err.value.retry_in == 60
    assert fake.round_trips("create") == 1 and h.sleeps == []  # the key was refused: nothing created
    assert fake.search_read("res.partner", [("name", "=", "X")]) == []


def test_api_key_alone_needs_json2(start):
    fake = start(17)
    h = Harness(fake, key=True, username=None, password=None)
    with pytest.raises(OdooAuthError, match="ODOO_USERNAME") as err:
        h.odoo.probe()
    assert fake.round_trips("authenticate") == 0 and h.fake.api_key not in str(err.value)


def test_gate_lets_one_caller_try_when_the_wait_is_over():
    clock = Clock()
    gate = AuthGate(clock, base=10, maximum=40)
    with pytest.raises(OdooAuthError), gate.attempt():
        raise OdooAuthError("refused")
    clock.advance(10)
    with gate.attempt():  # the one attempt of this step is under way...
        with pytest.raises(OdooAuthError, match="refused"), gate.attempt():
            pass  # ...so a concurrent caller gets the last verdict
    assert gate.retry_in() is None  # it succeeded: open again
    with pytest.raises(OdooAuthError), gate.attempt():
        raise OdooAuthError("refused again")
    assert gate.retry_in() == 10 and gate.failures == 1  # a success resets the steps


def test_gate_connection_error_gives_no_verdict():
    clock = Clock()
    gate = AuthGate(clock, base=10)
    with pytest.raises(OdooAuthError), gate.attempt():
        raise OdooAuthError("refused")
    clock.advance(10)
    with pytest.raises(OdooConnectionError), gate.attempt():
        raise OdooConnectionError("down")
    with pytest.raises(OdooValidationError), gate.attempt():  # the next caller may try; Odoo answered
        raise OdooValidationError("bad value")
    assert gate.retry_in() is None


# --- outages, timeouts, retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["503", "502", "close"])
def test_down_is_a_connection_error_after_bounded_retries(start, mode):
    for version, key in ((18, False), (19, True)):
        h = Harness(start(version), key=key)
        h.odoo.probe()
        path = "/json/2/*" if key else "/jsonrpc"
        before = h.hits(path)
        h.fake.down(mode)
        with pytest.raises(OdooConnectionError) as err:
            h.odoo.search_read("res.partner", [], ["name"])
        assert isinstance(h.clean(err.value), TransientError) and err.value.code == "UPSTREAM_UNAVAILABLE"
        assert h.hits(path) - before == 3 and len(h.sleeps) == 2  # two retries, then the caller queues
        assert "nginx" not in str(err.value) and "<html" not in str(err.value)
        h.fake.up()
        assert len(h.odoo.search_read("res.partner", [], ["name"])) == 2


def test_a_read_is_retried_after_one_transient_failure(on):
    h = Harness(on.fake, key=bool(on.config.api_key), sleep=lambda _seconds: on.fake.up())  # back during the wait
    h.odoo.probe()
    path = "/json/2/*" if h.config.api_key else "/jsonrpc"
    before = h.hits(path)
    on.fake.down("503")
    assert h.odoo.search_count("res.partner", []) == 2
    assert h.hits(path) - before == 2 and len(h.sleeps) == 1 and 0 < h.sleeps[0] <= 0.5


@pytest.mark.parametrize("mode", ["503", "close"])
def test_a_write_is_never_retried(on, mode):
    partner = on.fake.add_partner("Azure Interior", is_company=True)
    on.odoo.probe()
    path = "/json/2/*" if on.config.api_key else "/jsonrpc"
    before = on.hits(path)
    on.fake.down(mode)
    with pytest.raises(OdooConnectionError) as err:
        on.odoo.create("account.move", {"move_type": "out_invoice", "partner_id": partner, "ref": "REQ-1"})
    on.clean(err.value)
    assert on.hits(path) - before == 1 and on.sleeps == []
    on.fake.up()
    assert on.odoo.find_move_by_ref("REQ-1", "out_invoice") is None  # refused before Odoo: nothing made


def test_held_write_times_out_as_unknown_outcome_then_reconciles(start):
    for version, key in ((17, False), (19, True)):
        h = Harness(start(version), key=key, timeout=0.3)
        partner = h.fake.add_partner("Blue Sky Ltd", is_company=True, email="ap@bluesky.example")
        h.odoo.probe()
        hold = h.fake.hold("account.move", "create", phase="after")  # committed, then the answer never comes
        values = {"move_type": "out_invoice", "partner_id": partner, "ref": "vault-task-42",
                  "invoice_line_ids": [(0, 0, {"name": "Consulting", "quantity": 8, "price_unit": 150.0})]}
        with pytest.raises(OdooConnectionError, match="did not answer") as err:
            h.odoo.create("account.move", values)
        h.clean(err.value)
        assert hold.arrived.is_set() and h.fake.round_trips("create", "account.move") == 1 and h.sleeps == []
        found = h.odoo.find_move_by_ref("vault-task-42", "out_invoice")  # the caller reconciles, not resends
        assert found is not None and found["state"] == "draft" and found["amount_total"] == 1200.0
        assert found["partner_id"] == [partner, "Blue Sky Ltd"] and found["ref"] == "vault-task-42"
        hold.release()
        assert hold.completed.wait(5)
        assert h.odoo.search_count("account.move", [("ref", "=", "vault-task-42")]) == 1


def test_held_read_times_out_and_is_retried(start):
    for version, key in ((18, False), (19, True)):
        h = Harness(start(version), key=key, timeout=0.3)
        h.odoo.probe()
        h.fake.hold("res.partner", "search_read")  # the first one only
        assert [r["name"] for r in h.odoo.search_read("res.partner", [], ["name"], order="id")] == \
            ["My Company", "Mitchell Admin"]
        assert h.fake.round_trips("search_read", "res.partner") == 2 and len(h.sleeps) == 1


# --- accounting helpers ------------------------------------------------------------------------------------------


def test_read_group_is_the_same_on_18_and_19(start):
    results = []
    for version, key in TRANSPORTS[1:]:
        h = Harness(start(version), key=key)
        seed_ledger(h.fake)
        h.fake.reset_calls()
        monthly = h.odoo.read_group("account.move", SALES, ["invoice_date:month", "move_type"],
                                    ["amount_untaxed_signed:sum", "amount_total_signed:sum", "__count"])
        method = "formatted_read_group" if version >= 19 else "read_group"
        assert h.fake.round_trips(method, "account.move") == 1 and h.fake.round_trips("search_read") == 0
        by_partner = h.odoo.read_group("account.move", SALES, ["partner_id"],
                                       ["amount_residual_signed:sum", "amount_residual_signed:max"],
                                       order="amount_residual_signed:sum desc")
        by_count = h.odoo.read_group("account.move", SALES, ["invoice_date:quarter"], [], order="count desc")
        results.append((monthly, by_partner, by_count))
    assert results[0] == results[1] == results[2]
    monthly, by_partner, by_count = results[0]
    # by hand: Oct 1000 + 15% tax; Nov 200 + 300 (+15%) + 200; Dec the credit note
    assert monthly == [
        {"groups": {"invoice_date:month": "2026-10", "move_type": "out_invoice"}, "count": 1,
         "aggregates": {"amount_untaxed_signed:sum": 1000.0, "amount_total_signed:sum": 1150.0}},
        {"groups": {"invoice_date:month": "2026-11", "move_type": "out_invoice"}, "count": 3,
         "aggregates": {"amount_untaxed_signed:sum": 700.0, "amount_total_signed:sum": 745.0}},
        {"groups": {"invoice_date:month": "2026-12", "move_type": "out_refund"}, "count": 1,
         "aggregates": {"amount_untaxed_signed:sum": -100.0, "amount_total_signed:sum": -100.0}}]
    azure, deco = by_partner[0]["groups"]["partner_id"], by_partner[1]["groups"]["partner_id"]
    assert (azure[1], deco[1]) == ("Azure Interior", "Deco Addict")
    assert [(g["count"], g["aggregates"]) for g in by_partner] == [
        (3, {"amount_residual_signed:sum": 1250.0, "amount_residual_signed:max": 1150.0}),
        (2, {"amount_residual_signed:sum": 150.0, "amount_residual_signed:max": 150.0})]
    assert by_count == [{"groups": {"invoice_date:quarter": "2026-Q4"}, "count": 5, "aggregates": {}}]


def test_read_group_periods_and_bad_specs(start):
    h = Harness(start(17))
    seed_ledger(h.fake)
    by_day = h.odoo.read_group("account.move", SALES, ["invoice_date:day"], ["amount_total_signed:sum"],
                               order="invoice_date:day desc")
    assert [g["groups"]["invoice_date:day"] for g in by_day] == \
        ["2026-12-01", "2026-11-30", "2026-11-10", "2026-11-01", "2026-10-31"]
    by_year = h.odoo.read_group("account.move", SALES, ["invoice_date:year"], [])
    assert by_year == [{"groups": {"invoice_date:year": "2026"}, "count": 5, "aggregates": {}}]
    for groupby, aggregates, order in ((["invoice_date:fortnight"], [], None), (["state"], ["amount_total"], None),
                                       (["state"], ["amount_total:median"], None), (["state"], [], "amount desc"),
                                       (["state"], [], "count sideways")):
        with pytest.raises(ValidationError):
            h.odoo.read_group("account.move", SALES, groupby, aggregates, order=order)
    assert h.fake.round_trips("read_group") == 2


def test_find_partners(on):
    azure = on.fake.add_partner("Azure Interior", is_company=True, email="Billing@Azure.example", customer_rank=2)
    under = on.fake.add_partner("John Doe", email="john_doe@example.com", customer_rank=1)
    on.fake.add_partner("John Xdoe", email="johnxdoe@example.com", customer_rank=1)
    on.fake.add_partner("Azure Interior Supplies", is_company=True, supplier_rank=1)
    assert [p["id"] for p in on.odoo.find_partners(email="billing@azure.EXAMPLE")] == [azure]
    assert [p["id"] for p in on.odoo.find_partners(email="john_doe@example.com")] == [under]  # _ is no wildcard
    sent = [c for c in on.fake.calls if c.method == "search_read"][-1]
    assert sent.kwargs["domain"] == [["email", "=ilike", "john\\_doe@example.com"]]
    assert [p["id"] for p in on.odoo.find_partners(name="Azure Interior")] == [azure]
    assert on.odoo.find_partners(name="azure interior") == []  # exact name
    assert on.odoo.find_partners(email="nobody@example.com") == []
    both = on.odoo.find_partners(email="john_doe@example.com", name="Azure Interior")
    assert [p["id"] for p in both] == [azure, under]  # customers by rank
    assert both[0]["customer_rank"] == 2 and both[0]["commercial_partner_id"][0] == azure
    with pytest.raises(ValidationError):
        on.odoo.find_partners()


def test_draft_invoice_found_again_by_ref_then_posted(on):
    partner = on.fake.add_partner("Blue Sky Ltd", is_company=True)
    assert on.odoo.find_move_by_ref("task-7", "out_invoice") is None
    move = on.odoo.create("account.move", {"move_type": "out_invoice", "partner_id": partner, "ref": "task-7",
                                           "invoice_line_ids": [(0, 0, {"name": "Consulting", "quantity": 8,
                                                                        "price_unit": 150.0})]})
    found = on.odoo.find_move_by_ref("task-7", "out_invoice")
    assert (found["id"], found["state"], found["name"], found["amount_total"]) == (move, "draft", "/", 1200.0)
    assert on.odoo.find_move_by_ref("task-7", "out_refund") is None
    assert on.odoo.action("account.move", "action_post", [move]) is False  # Odoo's action_post returns False
    [posted] = on.odoo.read("account.move", [move], ["name", "state"])
    assert posted == {"id": move, "name": "INV/2026/00001", "state": "posted"}
    assert on.odoo.find_move_by_ref("task-7", "out_invoice")["state"] == "posted"


def test_register_payment_moves_payment_state(on):
    inv = on.fake.add_invoice("Azure Interior", [("Consulting", 2, 500.0, [1])])  # 1150.00
    first = on.odoo.register_payment(inv, 400.0, date="2026-11-21")
    assert (first["payment_state"], first["amount_residual"]) == ("partial", 750.0)
    [pay] = on.fake.read("account.payment", [first["payment_id"]], ["amount", "date", "reconciled_invoice_ids"])
    assert pay == {"id": first["payment_id"], "amount": 400.0, "date": "2026-11-21", "reconciled_invoice_ids": [inv]}
    cash = on.fake.search_read("account.journal", [("type", "=", "cash")], ["id"])[0]["id"]
    second = on.odoo.register_payment(inv, 750.0, date=date(2026, 11, 22), journal_id=cash)
    assert (second["payment_state"], second["amount_residual"]) == ("paid", 0.0)
    assert on.fake.read("account.payment", [second["payment_id"]], ["journal_id"])[0]["journal_id"][0] == cash
    with pytest.raises(OdooValidationError, match="nothing left to pay"):
        on.odoo.register_payment(inv, 1.0)
    assert on.fake.round_trips("action_create_payments") == 2 and on.sleeps == []


def test_payment_timeout_is_not_retried(start):
    h = Harness(start(18), timeout=0.3)
    inv = h.fake.add_invoice("Azure Interior", amount=100.0)
    h.odoo.probe()
    h.fake.hold("account.payment.register", "action_create_payments", phase="after")
    with pytest.raises(OdooConnectionError):
        h.odoo.register_payment(inv, 100.0)
    assert h.fake.round_trips("action_create_payments") == 1 and h.sleeps == []
    assert h.fake.read("account.move", [inv], ["payment_state"])[0]["payment_state"] == "paid"  # it did happen


def test_company_scope(on):
    assert on.odoo.company_currency() == {"company_id": 1, "company": "My Company", "currency_id": 2,
                                          "currency": "USD"}
    calls = on.fake.round_trips()
    on.odoo.company_currency()
    assert on.fake.round_trips() == calls  # cached
    assert on.odoo.companies() == [{"id": 1, "name": "My Company", "currency_id": 2, "currency": "USD"}]


def test_every_error_is_in_the_family():
    for cls, base in ((OdooAuthError, AuthError), (OdooConnectionError, TransientError)):
        assert issubclass(cls, OdooError) and issubclass(cls, base)
    assert OdooAccessError("x").status == 403 and OdooNotFoundError("x").code == "NOT_FOUND"
