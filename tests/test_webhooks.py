"""Webhooks may not reach this host or internal networks (SSRF), and a refused or failing one never touches the run."""

import http.server
import ipaddress
import logging
import socket
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
from dependency_injector import providers

from src.containers import Container, provide, shutdown
from src.services.egress import (
    LOOPBACK_NETWORKS,
    AddressRefused,
    EgressGuard,
    IPAddress,
    Resolver,
    can_bind,
    internal_kind,
    literal_address,
    parse_allowed_host,
)
from src.services.errors import InvalidRequest
from src.services.webhooks import WebhookSender, create_webhook_client
from src.settings import load_settings
from tests.conftest import TEST_CONFIG
from tests.inprocess import InProcessApi, Runs, Threads

WEBHOOK_LOGGER = "src.services.webhooks"

# Every form that got past the old loopback check, and ranges it did not check at all.
BYPASSES = [
    ("127.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("2130706433", "loopback"),
    ("0x7f.1", "loopback"),
    ("0177.0.1", "loopback"),
    ("017700000001", "loopback"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:7f00:1]", "loopback"),
    ("[::1]", "loopback"),
    ("[::]", "unspecified"),
    ("[::127.0.0.1]", "reserved"),  # IPv4-compatible, deprecated
    ("localhost", "loopback"),
    ("LocalHost.", "loopback"),
    ("api.localhost", "loopback"),
    (socket.gethostname(), "this host"),
    ("169.254.169.254", "link-local"),
    ("[fe80::1]", "link-local"),
    ("10.0.0.1", "private"),
    ("10.255.255.254", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("192.168.1", "private"),  # 192.168.0.1 in inet_aton's shorthand
    ("[fd00::1]", "private"),
    ("[fd12:3456::1]", "private"),
    ("[fc00::1]", "private"),
    ("[fec0::1]", "site-local"),
    ("100.64.0.1", "not globally routable"),
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("240.0.0.1", "private"),
    ("[::ffff:10.0.0.1]", "private"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("[64:ff9b::a9fe:a9fe]", "link-local"),  # NAT64 for 169.254.169.254
    ("[2002:a9fe:a9fe::]", "6to4 for 169.254.169.254, link-local"),
    ("[2002:7f00:1::]", "6to4 for 127.0.0.1, loopback"),
]


class FakeResolver(Resolver):
    """Names to fixed addresses; a name it does not know does not resolve."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.table[host]]


class Receiver:
    """A local HTTP endpoint recording each POST (path, headers, body) and answering `status` with `headers`."""

    def __init__(self, status: int = 204, headers: dict[str, str] | None = None) -> None:
        self.requests: list[dict] = []
        requests, reply = self.requests, (status, headers or {})

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(reply[0])
                for name, value in reply[1].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def guard(*allowed: str, resolver: Resolver | None = None) -> EgressGuard:
    return EgressGuard([parse_allowed_host(entry) for entry in allowed], resolver or Resolver())


def recording(sent: list[httpx.Request]) -> httpx.MockTransport:
    """A transport that keeps every request instead of sending it and answers 204."""

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    return httpx.MockTransport(handle)


def run_record() -> dict:
    return {"run_id": "run-1", "thread_id": "thread-1", "status": "success"}


async def deliver(sender: WebhookSender, url: str) -> None:
    """Send one webhook and wait until its background call has ended."""
    sender.send(url, run_record(), {"messages": []}, None, datetime.now(UTC))
    await sender.drain()


@pytest.fixture
async def client():
    async with create_webhook_client() as http:
        yield http


# Creation: fast, no lookup --------------------------------------------------------------


@pytest.mark.parametrize(("host", "kind"), BYPASSES)
def test_every_bypass_form_is_refused_when_the_run_is_created(host, kind):
    sender = WebhookSender(httpx.AsyncClient(), guard())
    with pytest.raises(InvalidRequest) as refused:
        sender.validate(f"http://{host}:8080/hook")
    message = str(refused.value)
    assert kind in message and "WEBHOOKS_ALLOWED_HOSTS" in message and "\n" not in message
    where = "this host" if kind in ("loopback", "unspecified", "this host") else "an internal address"
    assert f"points at {where}" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x",
        "http://93.184.216.34:8080/x",
        "http://[2606:2800:220:1:248:1893:25c8:1946]/x",
        "http://[::ffff:93.184.216.34]/x",
        "http://[64:ff9b::5db8:d822]/x",  # NAT64 for 93.184.216.34
        "https://user:pw@hooks.example.com/x?token=abc",
        "http://10.0.0.1.example.com/x",  # a name, checked when it is resolved
    ],
)
def test_public_addresses_and_names_pass_the_creation_check(url):
    assert WebhookSender(httpx.AsyncClient(), guard()).validate(url) == url


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        (5, "webhook must be an http:// or https:// URL"),
        ("ftp://example.org/x", "webhook must be an http:// or https:// URL"),
        ("http:///x", "webhook must be an http:// or https:// URL"),
        ("hooks.example.com/x", "webhook must be an http:// or https:// URL"),
        ("http://example.org:99999/x", "is not a valid URL"),
        ("http://0177.0.0.1/x", "is not a valid URL"),  # httpx refuses octal in dotted quads
    ],
)
def test_malformed_webhooks_are_refused(url, detail):
    with pytest.raises(InvalidRequest, match=detail):
        WebhookSender(httpx.AsyncClient(), guard()).validate(url)


def test_the_allow_list_admits_names_networks_and_loopback():
    loopback = WebhookSender(httpx.AsyncClient(), guard(*LOOPBACK_NETWORKS))
    for url in ("http://127.0.0.1:9/x", "http://127.1/x", "http://localhost/x", "http://[::1]/x"):
        assert loopback.validate(url) == url
    for url in ("http://0.0.0.0/x", "http://10.0.0.1/x", "http://169.254.169.254/x"):
        with pytest.raises(InvalidRequest):
            loopback.validate(url)
    internal = WebhookSender(httpx.AsyncClient(), guard("10.0.0.0/8", "192.168.1.5", "fd00::/8", "Hooks.Internal."))
    for url in ("http://10.1.2.3/x", "http://192.168.1.5/x", "http://[fd00::9]/x", "http://[::ffff:10.0.0.1]/x"):
        assert internal.validate(url) == url
    for url in ("http://192.168.1.6/x", "http://127.0.0.1/x", "http://172.16.0.1/x"):
        with pytest.raises(InvalidRequest):
            internal.validate(url)


def test_literal_addresses_are_read_as_the_os_reads_them():
    assert literal_address("127.1") == ipaddress.IPv4Address("127.0.0.1")
    assert literal_address("0x7f.1") == ipaddress.IPv4Address("127.0.0.1")
    assert literal_address("2130706433") == ipaddress.IPv4Address("127.0.0.1")
    assert literal_address("[::1]") == ipaddress.IPv6Address("::1")
    assert literal_address("1.2.3.4.5") is None and literal_address("example.com") is None
    assert internal_kind(ipaddress.ip_address("8.8.8.8")) is None
    assert internal_kind(ipaddress.ip_address("::ffff:8.8.8.8")) is None


# Sending: resolve once, check every address, connect to the one checked ---------------------


@pytest.mark.parametrize("host", ["127.1", "0x7f.1", "2130706433", "0.0.0.0", "::ffff:127.0.0.1", "localhost"])
async def test_the_os_resolver_gives_every_bypass_form_its_real_address_and_it_is_refused(host):
    with pytest.raises(AddressRefused) as refused:
        await guard().connect_address(host, 80)
    assert refused.value.this_host


async def test_this_hosts_own_name_is_refused_at_send_time():
    with pytest.raises(AddressRefused) as refused:
        await guard().connect_address(socket.gethostname(), 80)
    assert refused.value.this_host


async def test_an_address_of_this_host_outside_the_internal_ranges_is_refused(monkeypatch):
    assert can_bind(ipaddress.ip_address("127.0.0.1")) and not can_bind(ipaddress.ip_address("192.0.2.1"))
    # This machine has no public address of its own: 93.184.216.34 plays one (only it binds).
    monkeypatch.setattr("src.services.egress.can_bind", lambda address: str(address) == "93.184.216.34")
    own = guard(resolver=FakeResolver({"me.example": ["93.184.216.34"]}))
    with pytest.raises(AddressRefused, match="me.example is 93.184.216.34, an address of this host"):
        await own.connect_address("me.example", 443)
    with pytest.raises(AddressRefused, match="an address of this host"):
        own.check_host("93.184.216.34")
    # Where every address binds (ip_nonlocal_bind), binding tells nothing and is not used.
    monkeypatch.setattr("src.services.egress.can_bind", lambda address: True)
    assert await guard(resolver=FakeResolver({"me.example": ["93.184.216.34"]})).connect_address("me.example", 443)


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.7"], ["93.184.216.34", "10.0.0.7"], ["93.184.216.34", "169.254.169.254"], ["2606:4700::1", "fd00::1"]],
)
async def test_a_name_resolving_to_any_internal_address_is_refused_at_send_time(caplog, addresses):
    resolver = FakeResolver({"hooks.example.com": addresses})
    sent: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=recording(sent)) as mock:
        sender = WebhookSender(mock, guard(resolver=resolver))
        url = "https://user:hunter2@hooks.example.com/hook?token=s3cret"
        assert sender.validate(url) == url  # a name: nothing to look at until it is used
        with caplog.at_level(logging.WARNING, logger=WEBHOOK_LOGGER):
            await deliver(sender, url)
    assert sent == [] and resolver.lookups == ["hooks.example.com"]
    lines = [r.getMessage() for r in caplog.records if r.name == WEBHOOK_LOGGER]
    assert len(lines) == 1
    assert "webhook https://hooks.example.com/hook for run run-1 refused: hooks.example.com is" in lines[0]
    assert "hunter2" not in lines[0] and "s3cret" not in lines[0]


async def test_the_request_goes_to_the_checked_address_with_the_original_host_and_sni():
    resolver = FakeResolver({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    sent: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=recording(sent)) as mock:
        await deliver(WebhookSender(mock, guard(resolver=resolver)), "https://hooks.example.com:8443/hook?x=1")
    assert resolver.lookups == ["hooks.example.com"]
    (request,) = sent
    assert str(request.url) == "https://93.184.216.34:8443/hook?x=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.headers["content-type"] == "application/json"


async def test_a_pinned_call_reaches_a_real_receiver_under_its_own_name(client):
    receiver = Receiver()
    try:
        # The OS cannot resolve this name: only the pinned address can reach the receiver.
        resolver = FakeResolver({"receiver.test": ["127.0.0.1"]})
        sender = WebhookSender(client, guard("127.0.0.0/8", resolver=resolver))
        await deliver(sender, f"http://receiver.test:{receiver.port}/hook")
        (request,) = receiver.requests
        assert request["path"] == "/hook" and request["headers"]["Host"] == f"receiver.test:{receiver.port}"
        assert b'"run_id":"run-1"' in request["body"]
    finally:
        receiver.close()


async def test_an_allowed_name_may_resolve_to_an_internal_address(client):
    receiver = Receiver()
    try:
        sender = WebhookSender(client, guard("receiver.test", resolver=FakeResolver({"receiver.test": ["127.0.0.1"]})))
        await deliver(sender, f"http://receiver.test:{receiver.port}/hook")
        assert len(receiver.requests) == 1
    finally:
        receiver.close()


async def test_redirects_are_not_followed(client, caplog):
    target = Receiver()
    redirecting = Receiver(status=302, headers={"Location": target.url})
    try:
        sender = WebhookSender(client, guard(*LOOPBACK_NETWORKS))
        with caplog.at_level(logging.WARNING, logger=WEBHOOK_LOGGER):
            await deliver(sender, redirecting.url)
        assert len(redirecting.requests) == 1 and target.requests == []
        (line,) = [r.getMessage() for r in caplog.records if r.name == WEBHOOK_LOGGER]
        assert "the receiver answered 302, a redirect (not followed)" in line
    finally:
        redirecting.close()
        target.close()


def drip_server() -> tuple[socket.socket, threading.Event]:
    """Accepts connections and sends an answer's status line one byte every 0.1 s, forever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while not stop.wait(0.1):
                try:
                    conn.sendall(b"H")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    return listener, stop


async def test_a_receiver_that_never_finishes_answering_is_given_up_within_the_total_timeout(caplog):
    listener, stop = drip_server()
    # Every single read gets a byte well within httpx's per-read timeout: only a bound on the
    # whole call ends this.
    async with create_webhook_client(timeout=5.0) as http:
        sender = WebhookSender(http, guard(*LOOPBACK_NETWORKS), timeout=0.5)
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger=WEBHOOK_LOGGER):
            await deliver(sender, f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        assert time.monotonic() - began < 1.5
    stop.set()
    listener.close()
    (line,) = [r.getMessage() for r in caplog.records if r.name == WEBHOOK_LOGGER]
    assert "failed: no answer within 0.5 s" in line


async def test_a_receiver_error_is_one_warning_line(client, caplog):
    failing = Receiver(status=500)
    try:
        sender = WebhookSender(client, guard(*LOOPBACK_NETWORKS))
        with caplog.at_level(logging.WARNING, logger=WEBHOOK_LOGGER):
            await deliver(sender, failing.url)
        (line,) = [r.getMessage() for r in caplog.records if r.name == WEBHOOK_LOGGER]
        assert line == f"webhook {failing.url} for run run-1 failed: the receiver answered 500"
    finally:
        failing.close()


async def test_a_webhook_refused_at_send_time_does_not_touch_the_run(caplog):
    container = Container()
    container.config.from_dict(load_settings(TEST_CONFIG, environ={}))
    resolver = FakeResolver({"hooks.example.com": ["10.0.0.7"]})
    with container.egress_guard.override(providers.Object(guard(resolver=resolver))):
        api = await InProcessApi(container).start()
        threads, runs = Threads(api), Runs(api)
        thread_id = (await threads.create({}))["thread_id"]
        body = {"assistant_id": "slow", "input": {"steps": []}, "webhook": "http://hooks.example.com/hook"}
        with caplog.at_level(logging.WARNING, logger=WEBHOOK_LOGGER):
            assert (await runs.wait(thread_id, body))["steps"] == ["step 1"]
            await (await provide(container.webhooks)).drain()
        (run,) = await api.call("GET", f"/threads/{thread_id}/runs")
        await shutdown(container)
    assert run["status"] == "success"
    assert resolver.lookups == ["hooks.example.com"]
    (line,) = [r.getMessage() for r in caplog.records if r.name == WEBHOOK_LOGGER]
    assert "refused: hooks.example.com is 10.0.0.7, private" in line
