"""Auth modules in process: what authenticate receives, which handler runs, what a module that raises,
returns garbage or is slow gets answered, the reserved configurable keys, namespace rewriting, start-up
errors and the ready-made module's API keys and JWTs."""

import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from langgraph_sdk import Auth

from src.containers import Container, provide, shutdown
from src.services.auth.builtin import BuiltinAuthConfig, Credentials, build_builtin_auth, builtin_config
from src.services.auth.module import AuthModule, RequestParts, load_auth_object
from src.services.auth.user import ConfigUser, normalise_user, restore_caller
from src.settings import ConfigError, load_settings
from tests.conftest import ServerProcess
from tests.inprocess import ApiError, InProcessApi

AUTH_DIR = Path(__file__).resolve().parent / "auth"
AUTH_CONFIG = AUTH_DIR / "config.yml"
ALICE_KEY, BOB_KEY = "alice-key-0123456789", "bob-key-0123456789ab"
KEYS = f"alice:{ALICE_KEY},bob:{BOB_KEY},ada.l@example.com:ada-key-0123456789abc"


def human(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture
async def apis():
    """Starts in-process APIs with the given environment (auth settings); stops them after the test."""
    started: list[InProcessApi] = []

    async def start(**env: str) -> InProcessApi:
        container = Container()
        container.config.from_dict(load_settings(AUTH_CONFIG, environ={"AUTH_TIMEOUT": "0.5", **env}))
        api = await InProcessApi(container).start()
        started.append(api)
        return api

    yield start
    for api in started:
        await api.stop()


def detail(response) -> str:
    return orjson.loads(response.description)["detail"]


async def test_without_auth_everything_is_open_and_info_says_so(apis):
    api = await apis()
    assert (await api.call("GET", "/info"))["auth"] == {"enabled": False, "module": "off"}
    assert (await api.call("POST", "/threads", {}))["metadata"] == {}
    # The reserved keys are refused even so: a graph can always trust them.
    with pytest.raises(ApiError) as reserved:
        await api.call(
            "POST", "/runs/wait", {"assistant_id": "whoami", "config": {"configurable": {"langgraph_auth_user": {}}}}
        )
    assert reserved.value.status == 422 and "langgraph_auth_user is reserved" in reserved.value.detail
    who = await api.call("POST", "/runs/wait", {"assistant_id": "whoami", "input": {}})
    assert who["user_id"] is None and who["user"] is None


async def test_public_paths_and_preflights_need_no_credentials(apis):
    api = await apis(AUTH_PATH="./open_auth.py:auth")
    for path in ("/ok", "/health"):  # and /openapi.json, /docs: see the matrix test (a real server)
        assert (await api.respond("GET", path)).status_code == 200, path
    preflight = await api.respond(
        "OPTIONS", "/threads", headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    for method, path in (("GET", "/info"), ("POST", "/threads/search"), ("GET", "/nowhere"), ("GET", "/ok/x")):
        response = await api.respond(method, path, json={} if method == "POST" else None)
        assert response.status_code == 401 and detail(response) == "send a token", path
    info = await api.call("GET", "/info", headers={"Authorization": "t"})
    assert info["auth"] == {"enabled": True, "module": "custom"}


async def test_authenticate_receives_its_parameters_by_name(apis):
    api = await apis(AUTH_PATH="./probe_auth.py:auth")
    thread_id = str(uuid.uuid4())
    response = await api.respond(
        "GET",
        f"/threads/{thread_id}",
        query={"a": "1", "b": "x y"},
        headers={"X-Mode": "seen", "Authorization": "Bearer t"},
    )
    assert response.status_code == 403
    seen = detail(response)
    for part in (
        f"'path': '/threads/{thread_id}'",
        "'method': 'GET'",
        f"'path_params': {{'thread_id': '{thread_id}'}}",
        "'query_params': {'a': '1', 'b': 'x y'}",
        "'authorization': 'Bearer t'",
        f"'request': ['GET', '/threads/{thread_id}', 'seen', {{}}]",
        "'body': {}",
    ):
        assert part in seen


async def test_handler_resolution_most_specific_first(apis):
    api = await apis(AUTH_PATH="./order_auth.py:auth")
    thread_id, assistant_id = str(uuid.uuid4()), str(uuid.uuid4())
    expected = [
        ("POST", "/threads", {}, "threads.create for threads:create with ['if_exists', 'metadata', 'thread_id']"),
        ("GET", f"/threads/{thread_id}", None, "threads.* for threads:read with ['thread_id']"),
        ("POST", f"/threads/{thread_id}/runs", {"assistant_id": "slow"}, "threads.* for threads:create_run"),
        ("GET", f"/threads/{thread_id}/runs", None, "threads.* for threads:search with ['metadata', 'thread_id']"),
        ("POST", "/threads/search", {}, "threads.* for threads:search"),
        ("GET", f"/assistants/{assistant_id}", None, "*.read for assistants:read with ['assistant_id']"),
        ("POST", "/assistants", {"graph_id": "slow"}, "global for assistants:create"),
        ("PUT", "/store/items", {"namespace": ["a"], "key": "k", "value": {}}, "global for store:put"),
        ("GET", "/store/items", None, "*.read"),  # never reached: store's action is get
    ]
    for method, path, body, wanted in expected[:-1]:
        response = await api.respond(method, path, json=body, headers={"Authorization": "x"})
        assert response.status_code == 403, (path, response.description)
        assert detail(response).startswith(wanted), (path, detail(response))
    store_get = await api.respond("GET", "/store/items", query={"namespace": "a", "key": "k"})
    assert detail(store_get).startswith("global for store:get")


async def test_a_module_without_handlers_allows_everything(apis):
    api = await apis(AUTH_PATH="./open_auth.py:auth")
    created = await api.call("POST", "/threads", {"metadata": {"n": 1}}, headers={"Authorization": "alice"})
    seen = await api.call("GET", f"/threads/{created['thread_id']}", headers={"Authorization": "bob"})
    assert seen["metadata"] == {"n": 1}


@pytest.mark.parametrize(
    ("mode", "status", "wanted"),
    [
        ("raise", 401, "authentication failed"),  # most often the module choking on what the client sent
        ("assert", 401, "send a token"),
        ("refuse", 401, "no entry"),
        ("throttle", 429, "Too Many Requests"),
        ("redirect", 500, "raised HTTPException with status 302"),
        ("garbage", 500, "authenticate returned int"),
        ("no-identity", 500, "authenticate returned dict"),
        ("slow", 503, "authentication did not finish within 0.5 s"),
        ("handler-raise", 500, "the auth handler for threads:read raised ValueError"),
        ("handler-garbage", 500, "the auth handler for threads:read returned int"),
        ("handler-bad-filter", 500, "operator '$gt' on 'owner'"),
        ("handler-slow", 503, "authorization did not finish within 0.5 s"),
        ("handler-assert", 403, "nope"),
        ("handler-false", 403, "Forbidden"),
        ("handler-http", 429, "slow down"),
        ("handler-bad-status", 500, "status 302"),
    ],
)
async def test_a_module_that_raises_returns_garbage_or_is_slow(apis, caplog, mode, status, wanted):
    api = await apis(AUTH_PATH="./probe_auth.py:auth")
    began = time.monotonic()
    response = await api.respond("GET", f"/threads/{uuid.uuid4()}", headers={"X-Mode": mode})
    assert response.status_code == status and wanted in detail(response)
    assert time.monotonic() - began < 2  # a slow module is cut off at auth.timeout
    if status == 503:
        assert response.headers.get("retry-after") == "1"
    if mode == "refuse":
        assert response.headers.get("www-authenticate") == "Bearer"
    if mode == "handler-http":
        assert response.headers.get("retry-after") == "7"
    if mode in ("raise", "handler-raise"):
        assert any(record.exc_info for record in caplog.records)  # the traceback is in the log


async def test_a_handler_cannot_store_metadata_that_is_no_object(apis):
    api = await apis(AUTH_PATH="./probe_auth.py:auth")
    response = await api.respond("POST", "/threads", json={}, headers={"X-Mode": "metadata-garbage"})
    assert response.status_code == 500 and "set metadata to a list" in detail(response)


async def test_a_plain_authenticate_runs_off_the_event_loop(apis):
    api = await apis(AUTH_PATH="./sync_auth.py:auth", AUTH_TIMEOUT="5")

    async def timed(token: str) -> float:
        began = time.monotonic()
        await api.call("POST", "/threads/search", {}, headers={"Authorization": token})
        return time.monotonic() - began

    slow = asyncio.ensure_future(timed("slow"))
    await asyncio.sleep(0.1)
    assert await timed("fast") < 0.5  # answered while the slow one blocks its worker thread
    assert await slow >= 1.0


async def test_runs_carry_the_caller_and_graphs_see_it(apis):
    api = await apis(AUTH_PATH="./probe_auth.py:auth")
    body = {"assistant_id": "whoami", "input": {}, "config": {"configurable": {"user_id": "mallory"}}}
    who = await api.call("POST", "/runs/wait", body, headers={"X-Mode": "plain"})
    assert who["user_id"] == "ada.lovelace@example.com" and who["permissions"] == ["read"]
    assert who["identity_attribute"] == who["server_user"] == "ada.lovelace@example.com"
    assert who["user"]["display_name"] == "Ada" and who["user"]["mode"] == "plain"
    assert "not_json" not in who["user"]  # only what can be stored with the run travels with it
    assert who["claimed_user_id"] == "mallory"  # left to the graph, which knows it is only a claim
    for key in ("langgraph_auth_user", "langgraph_auth_user_id", "langgraph_auth_permissions"):
        sent = {"assistant_id": "whoami", "config": {"configurable": {key: "alice"}}}
        for path in ("/runs/wait", f"/threads/{uuid.uuid4()}/runs"):
            with pytest.raises(ApiError) as refused:
                await api.call("POST", path, sent, headers={"X-Mode": "plain"})
            assert refused.value.status == 422 and f"{key} is reserved" in refused.value.detail


async def test_store_namespace_rewriting(apis):
    api = await apis(AUTH_API_KEYS=KEYS)
    alice, bob, ada = ({"x-api-key": key} for key in (ALICE_KEY, BOB_KEY, "ada-key-0123456789abc"))
    await api.call("PUT", "/store/items", {"namespace": ["notes"], "key": "k", "value": {"v": "a"}}, headers=alice)
    await api.call("PUT", "/store/items", {"namespace": ["bob", "notes"], "key": "k", "value": {"v": "b"}}, headers=bob)
    await api.call("PUT", "/store/items", {"namespace": ["notes"], "key": "k", "value": {"v": "ada"}}, headers=ada)
    store = await provide(api.container.store)
    assert (await store.aget(("alice", "notes"), "k")).value == {"v": "a"}
    assert (await store.aget(("bob", "notes"), "k")).value == {"v": "b"}  # already prefixed: kept
    assert (await store.aget(("ada%2El@example%2Ecom", "notes"), "k")).value == {"v": "ada"}  # one label
    got = await api.call("GET", "/store/items", query={"namespace": "notes", "key": "k"}, headers=alice)
    assert got["namespace"] == ["alice", "notes"] and got["value"] == {"v": "a"}
    found = await api.call("POST", "/store/items/search", {"namespace_prefix": []}, headers=bob)
    assert [item["namespace"] for item in found["items"]] == [["bob", "notes"]]
    listed = await api.call("POST", "/store/namespaces", {}, headers=alice)
    assert listed == {"namespaces": [["alice", "notes"]]}
    # Asking for another user's namespace only reaches one's own copy of that name.
    other = await api.call("GET", "/store/items", query={"namespace": "bob.notes", "key": "k"}, headers=alice)
    assert other is None
    await api.call("DELETE", "/store/items", {"namespace": ["bob", "notes"], "key": "k"}, headers=alice)
    assert await store.aget(("bob", "notes"), "k") is not None  # alice deleted her own (absent) copy


@pytest.mark.parametrize(
    ("mode", "status", "wanted"),
    [
        ("ns-dot", 422, "namespace[0] must not contain '.'"),
        ("ns-langgraph", 422, 'must not start with "langgraph"'),
        ("store-contains", 500, "only equalities"),
    ],
)
async def test_store_rewrites_follow_the_input_rules(apis, mode, status, wanted):
    api = await apis(AUTH_PATH="./probe_auth.py:auth")
    put = {"namespace": ["notes"], "key": "k", "value": {"owner": "x"}}
    action = ("POST", "/store/items/search", {}) if mode == "store-contains" else ("PUT", "/store/items", put)
    response = await api.respond(*action, headers={"X-Mode": mode})
    assert response.status_code == status and wanted in detail(response)


async def test_store_filters_apply_to_item_values(apis):
    api = await apis(AUTH_PATH="./probe_auth.py:auth")
    mode = {"X-Mode": "store-filter"}  # the handler returns {"owner": "ada"}
    for key, owner in (("mine", "ada"), ("theirs", "bob")):
        store = await provide(api.container.store)
        await store.aput(("notes",), key, {"owner": owner})
    found = await api.call("POST", "/store/items/search", {"namespace_prefix": ["notes"]}, headers=mode)
    assert [item["key"] for item in found["items"]] == ["mine"]
    assert await api.call("GET", "/store/items", query={"namespace": "notes", "key": "theirs"}, headers=mode) is None
    with pytest.raises(ApiError) as taken:
        await api.call("PUT", "/store/items", {"namespace": ["notes"], "key": "theirs", "value": {}}, headers=mode)
    assert taken.value.status == 409
    await api.call("DELETE", "/store/items", {"namespace": ["notes"], "key": "theirs"}, headers=mode)
    assert await store.aget(("notes",), "theirs") is not None
    with pytest.raises(ApiError) as clash:
        await api.call("POST", "/store/items/search", {"filter": {"owner": "bob"}}, headers=mode)
    assert clash.value.status == 422 and "'owner'" in clash.value.detail


async def test_the_agent_remembers_per_authenticated_user(apis):
    api = await apis(AUTH_API_KEYS=KEYS)
    alice, bob = {"x-api-key": ALICE_KEY}, {"x-api-key": BOB_KEY}
    claim = {"configurable": {"user_id": "bob"}}
    body = {"assistant_id": "agent", "input": human("remember that I like tea"), "config": claim}
    await api.call("POST", "/runs/wait", body, headers=alice)
    ask = {"assistant_id": "agent", "input": human("what do you remember about me?")}
    asked = await api.call("POST", "/runs/wait", {**ask, "config": {"configurable": {"user_id": "alice"}}}, headers=bob)
    assert asked["messages"][-1]["content"] == "I don't remember anything about you yet."
    mine = await api.call("POST", "/runs/wait", ask, headers=alice)
    assert mine["messages"][-1]["content"] == "Here is what I remember: I like tea."
    # Kept in alice's own namespace, which the ready-made auth lets her read through the store API.
    found = await api.call("POST", "/store/items/search", {"namespace_prefix": ["memories"]}, headers=alice)
    assert [item["value"] for item in found["items"]] == [{"fact": "I like tea"}]
    assert (await api.call("POST", "/store/items/search", {}, headers=bob))["items"] == []


# --- start-up: a bad auth setting is a config error ---


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [
        ("./missing.py:auth", "does not exist"),
        ("./docs_auth.py", "expected './path/to/auth.py:auth'"),
        ("./docs_auth.py:nothing", "has no attribute 'nothing'"),
        ("./not_auth.py:auth", "'auth' is a dict; expected a langgraph_sdk.Auth object"),
        ("./not_auth.py:no_authenticate", "has no authenticate function"),
        ("./not_auth.py:strange_parameters", "authenticate requires parameter(s) token"),
        ("./broken_import.py:auth", "does not import: RuntimeError: cannot reach the secrets vault"),
        ("no_such_package.auth:auth", "does not import: ModuleNotFoundError"),
    ],
)
def test_a_bad_auth_path_is_a_config_error(spec, wanted):
    with pytest.raises(ConfigError) as refused:
        load_auth_object(spec, str(AUTH_DIR))
    assert wanted in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({"AUTH_API_KEYS": "alice:short"}, "shorter than 16 characters"),
        ({"AUTH_API_KEYS": "alice"}, "an entry has no ':'"),
        ({"AUTH_API_KEYS": f"a:{ALICE_KEY},b:{ALICE_KEY}"}, "two identities share one key"),
        ({"AUTH_JWT_SECRET": "too-short"}, "at least 32 bytes"),
        ({"AUTH_PATH": "./docs_auth.py:auth", "AUTH_API_KEYS": KEYS}, "auth.path and auth.api_keys are both set"),
        ({"AUTH_JWT_SECRET": "s" * 32, "AUTH_JWT_JWKS_FILE": "jwks.json"}, "are both set"),
        ({"AUTH_TIMEOUT": "0"}, "AUTH_TIMEOUT='0' is invalid"),
    ],
)
def test_bad_auth_settings_are_config_errors_that_show_no_secret(env, wanted):
    with pytest.raises(ConfigError) as refused:
        load_settings(AUTH_CONFIG, environ=env)
    message = str(refused.value)
    assert wanted in message and "short" not in message.replace("shorter", "") and ALICE_KEY not in message


def test_a_bad_auth_path_stops_the_server_with_one_line():
    server = ServerProcess(env={"CONFIG_FILE": str(AUTH_CONFIG), "AUTH_PATH": "./missing.py:auth"})
    code, output, _ = server.run_to_exit()
    assert code == 2
    assert output.strip().splitlines() == [
        f"agent-server: config error: auth.path='./missing.py:auth' is invalid: file "
        f"'{AUTH_DIR / 'missing.py'}' does not exist; expected './path/to/auth.py:auth' (relative to the "
        "config file) or 'package.module:auth'"
    ]


# --- the ready-made module: API keys and JWTs ---


def headers(**values: str) -> dict[bytes, bytes]:
    return {name.replace("_", "-").encode(): value.encode() for name, value in values.items()}


def token(key, claims: dict, algorithm: str = "HS256", **header) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm=algorithm, headers=header or None)


def refused(credentials: Credentials, sent: dict[bytes, bytes]) -> str:
    with pytest.raises(Auth.exceptions.HTTPException) as refusal:
        credentials.user(sent)
    assert refusal.value.status_code == 401 and "WWW-Authenticate" in refusal.value.headers
    return refusal.value.detail


def test_api_keys():
    keys = Credentials(BuiltinAuthConfig(api_keys={"alice": ALICE_KEY, "bob": BOB_KEY}))
    assert keys.user(headers(x_api_key=ALICE_KEY))["identity"] == "alice"
    assert keys.user(headers(authorization=f"Bearer {BOB_KEY}"))["identity"] == "bob"  # no JWT configured
    assert refused(keys, headers(x_api_key=ALICE_KEY[:-1])) == "invalid API key"
    assert "send an x-api-key header" in refused(keys, {})


SECRET = "a-secret-of-at-least-thirty-two-bytes"


def test_hs256_tokens_and_their_claims():
    config = BuiltinAuthConfig(
        api_keys={"alice": ALICE_KEY},
        jwt_secret=SECRET,
        audience="agents",
        issuer="https://id.example",
        identity_claim="email",
        permissions_claim="scope",
    )
    credentials = Credentials(config)
    good = {"email": "ada@example.com", "aud": "agents", "iss": "https://id.example", "scope": "read write"}
    user = credentials.user(headers(authorization=f"Bearer {token(SECRET, good)}"))
    assert user == {"identity": "ada@example.com", "display_name": "ada@example.com", "permissions": ["read", "write"]}
    assert credentials.user(headers(x_api_key=ALICE_KEY))["identity"] == "alice"  # keys still work
    assert "Signature verification failed" in refused(
        credentials, headers(authorization=f"Bearer {token('x' * 32, good)}")
    )
    assert "expired" in refused(credentials, headers(authorization=f"Bearer {token(SECRET, {**good, 'exp': 1})}"))
    no_exp = jwt.encode(good, SECRET, algorithm="HS256")
    assert '"exp"' in refused(credentials, headers(authorization=f"Bearer {no_exp}"))
    assert "Audience" in refused(credentials, headers(authorization=f"Bearer {token(SECRET, {**good, 'aud': 'x'})}"))
    assert "issuer" in refused(credentials, headers(authorization=f"Bearer {token(SECRET, {**good, 'iss': 'x'})}"))
    no_email = {key: value for key, value in good.items() if key != "email"}
    assert "no 'email' claim" in refused(credentials, headers(authorization=f"Bearer {token(SECRET, no_email)}"))
    none_alg = jwt.encode({**good, "exp": int(time.time()) + 60}, None, algorithm="none")
    assert "invalid token" in refused(credentials, headers(authorization=f"Bearer {none_alg}"))
    assert "or an Authorization: Bearer <JWT> header" in refused(credentials, {})


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    folder = tmp_path_factory.mktemp("keys")
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (folder / "public.pem").write_bytes(pem)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    (folder / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}))
    (folder / "private.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (folder / "garbage.json").write_text("{}")
    return folder, private


def test_rs256_tokens_with_a_public_key_file_or_a_jwks_file(rsa_keys):
    folder, private = rsa_keys
    signed = token(private, {"sub": "carol"}, "RS256", kid="k1")
    for section in ({"jwt_public_key_file": "public.pem"}, {"jwt_jwks_file": "jwks.json"}):
        credentials = Credentials(builtin_config(section, str(folder)))
        assert credentials.user(headers(authorization=f"Bearer {signed}"))["identity"] == "carol"
        forged = token(SECRET, {"sub": "carol"}, "HS256", kid="k1")  # an HMAC token must not pass as RS256
        assert "invalid token" in refused(credentials, headers(authorization=f"Bearer {forged}"))
    jwks = Credentials(builtin_config({"jwt_jwks_file": "jwks.json"}, str(folder)))
    unknown = token(private, {"sub": "carol"}, "RS256", kid="k2")
    assert "no key with kid 'k2'" in refused(jwks, headers(authorization=f"Bearer {unknown}"))
    for section, wanted in (
        ({"jwt_public_key_file": "missing.pem"}, "cannot be read"),
        ({"jwt_public_key_file": "private.pem"}, "public key, not a private one"),
        ({"jwt_public_key_file": "jwks.json"}, "not an RSA public key"),
        ({"jwt_jwks_file": "garbage.json"}, "not a JWKS document"),
    ):
        with pytest.raises(ConfigError) as bad:
            builtin_config(section, str(folder))
        assert wanted in str(bad.value)


async def test_the_ready_made_module_is_an_auth_object_like_a_users():
    auth = build_builtin_auth(BuiltinAuthConfig(api_keys={"alice": ALICE_KEY}))
    assert isinstance(auth, Auth)
    module = AuthModule(auth)
    user = await module.authenticate(RequestParts("GET", "/threads", headers={"x-api-key": ALICE_KEY}))
    assert user is not None and user.identity == "alice"
    value = {"thread_id": uuid.uuid4(), "metadata": {"owner": "mallory"}}
    visible = await module.authorize(user, "threads", "create", value)
    assert value["metadata"] == {"owner": "alice"} and visible.matches({"owner": "alice"})
    read = await module.authorize(user, "assistants", "read", {"assistant_id": uuid.uuid4()})
    assert read.matches({"created_by": "system"}) and not read.matches({"owner": "bob"})
    namespace = {"namespace": ("notes",)}
    assert await module.authorize(user, "store", "put", namespace) is None and namespace["namespace"] == (
        "alice",
        "notes",
    )
    with pytest.raises(Exception) as denied:
        await module.authorize(user, "crons-of-the-future", "read", {})
    assert getattr(denied.value, "status", None) == 403


def test_normalised_users():
    assert normalise_user("ada").dict() == {
        "identity": "ada",
        "permissions": [],
        "display_name": "ada",
        "is_authenticated": True,
    }
    user = normalise_user((["p"], {"identity": "ada", "team": "red"}))
    assert user.permissions == ["p"] and user.team == user["team"] == "red"
    stored = user.stored()
    assert (
        isinstance(stored, ConfigUser)
        and stored.identity == "ada"
        and orjson.loads(orjson.dumps(stored))["team"] == "red"
    )
    # A run stored as JSON and executed by another process gets its caller back as it was.
    configurable = orjson.loads(orjson.dumps({"langgraph_auth_user": stored}))
    restore_caller(configurable)
    assert configurable["langgraph_auth_user"].identity == "ada" and configurable["langgraph_auth_user"] == stored


async def test_the_readme_example_auth_file(apis, tmp_path):
    readme = (AUTH_DIR.parent.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("```python\n# auth.py", 1)[1].split("```", 1)[0]
    (tmp_path / "auth.py").write_text("# auth.py" + example, encoding="utf-8")
    api = await apis(AUTH_PATH=f"{tmp_path / 'auth.py'}:auth")
    alice, bob = {"Authorization": "Bearer alice-token"}, {"Authorization": "Bearer bob-token"}
    thread = await api.call("POST", "/threads", {"metadata": {"owner": "bob"}}, headers=alice)
    assert thread["metadata"] == {"owner": "alice"}
    with pytest.raises(ApiError) as hidden:
        await api.call("GET", f"/threads/{thread['thread_id']}", headers=bob)
    assert hidden.value.status == 404
    assert await api.call("POST", "/threads/search", {}, headers=bob) == []
    await api.call("PUT", "/store/items", {"namespace": ["notes"], "key": "k", "value": {"v": 1}}, headers=alice)
    assert (await api.call("POST", "/store/namespaces", {}, headers=alice))["namespaces"] == [["alice", "notes"]]
    with pytest.raises(ApiError) as refused:
        await api.call("POST", "/threads/search", {}, headers={"Authorization": "Bearer nope"})
    assert refused.value.status == 401 and refused.value.detail == "Invalid token"


async def test_a_queued_run_executes_as_its_caller_on_another_process(pg_url):
    """Alice's run waits in the queue of the process that took it (its one slot is busy) and is executed
    by another process sharing the database: the graph still sees Alice, as the run's creator."""
    env = {"DATABASE_URL": pg_url, "AUTH_API_KEYS": KEYS, "RUNS_MAX_CONCURRENCY": "1", "AUTH_TIMEOUT": "5"}
    accepting, executing = Container(), Container()
    accepting.config.from_dict(load_settings(AUTH_CONFIG, environ=env))
    api = await InProcessApi(accepting).start()
    alice = {"Authorization": f"Bearer {ALICE_KEY}"}
    try:
        busy = await api.call("POST", "/threads", {}, headers=alice)
        slow = {"assistant_id": "slow", "input": {"steps": []}, "config": {"configurable": {"delay": 30}}}
        await api.call("POST", f"/threads/{busy['thread_id']}/runs", slow, headers=alice)
        thread = await api.call("POST", "/threads", {}, headers=alice)
        queued = await api.call(
            "POST", f"/threads/{thread['thread_id']}/runs", {"assistant_id": "whoami", "input": {}}, headers=alice
        )
        assert queued["status"] == "pending"  # the accepting process has no free slot
        executing.config.from_dict(load_settings(AUTH_CONFIG, environ=env))
        await provide(executing.application)  # its worker takes the run from the queue
        path = f"/threads/{thread['thread_id']}/runs/{queued['run_id']}"
        result = await api.call("GET", f"{path}/join", headers=alice)
        assert (result["user_id"], result["identity_attribute"], result["server_user"]) == ("alice", "alice", "alice")
        runs = await provide(executing.run_repository)
        record = await runs.get_run(queued["run_id"])
        assert record["status"] == "success" and record["attempt"] == 1
    finally:
        await shutdown(executing)
        await api.stop()


async def test_the_cron_routes_ask_the_crons_handlers_with_the_langgraph_values(apis):
    api = await apis(AUTH_PATH="./cron_auth.py:auth")
    module = next(module for name, module in sys.modules.items() if name.startswith("agent_server_auth_cron_auth_"))
    seen = module.SEEN
    seen.clear()
    thread_id = (await api.call("POST", "/threads", {}))["thread_id"]
    body = {
        "assistant_id": "slow",
        "schedule": "0 0 1 1 *",
        "input": {},
        "metadata": {"n": 1},
        "end_time": "2100-01-01",
    }
    cron = await api.call("POST", f"/threads/{thread_id}/runs/crons", body)
    (_, _, create), (_, _, create_run) = seen[0], seen[1]
    assert [(resource, action) for resource, action, _ in seen] == [("crons", "create"), ("threads", "create_run")]
    assert create == {
        "payload": body,
        "schedule": "0 0 1 1 *",
        "cron_id": uuid.UUID(cron["cron_id"]),
        "thread_id": uuid.UUID(thread_id),
        "user_id": "ada",
        "end_time": datetime(2100, 1, 1, tzinfo=UTC),
        "metadata": {"n": 1},
    }
    assert create_run["thread_id"] == uuid.UUID(thread_id) and create_run["metadata"] == {"n": 1, "stamped": "ada"}
    assert cron["metadata"] == cron["payload"]["metadata"] == {"n": 1, "stamped": "ada"} and cron["user_id"] == "ada"
    cron_id = uuid.UUID(cron["cron_id"])
    slow = uuid.UUID((await api.call("GET", "/assistants/slow"))["assistant_id"])
    calls = [
        ("GET", f"/runs/crons/{cron_id}", None, "read", {"cron_id": cron_id}),
        (
            "PATCH",
            f"/runs/crons/{cron_id}",
            {"schedule": "0 0 2 1 *", "metadata": {"m": 2}},
            "update",
            {"cron_id": cron_id, "payload": {"schedule": "0 0 2 1 *", "metadata": {"m": 2}}, "schedule": "0 0 2 1 *"}
            | {"metadata": {"m": 2}},
        ),
        (
            "POST",
            "/runs/crons/search",
            {"assistant_id": "slow", "thread_id": thread_id, "limit": 5, "offset": 1},
            "search",
            {"assistant_id": slow, "thread_id": uuid.UUID(thread_id), "metadata": {}, "limit": 5, "offset": 1},
        ),
        (
            "POST",
            "/runs/crons/count",
            {},
            "search",
            {"assistant_id": None, "thread_id": None, "metadata": {}}
            | {
                "limit": 0,
                "offset": 0,
            },
        ),
        ("DELETE", f"/runs/crons/{cron_id}", None, "delete", {"cron_id": cron_id}),
    ]
    for method, path, payload, action, value in calls:
        for answer, status in (("false", 403), ("", 204 if method == "DELETE" else 200)):
            seen.clear()
            response = await api.respond(method, path, json=payload, headers={"x-answer": answer})
            assert response.status_code == status, (method, path, answer, response.description)
            assert seen == [("crons", action, value)], (method, path)
    # refused, a cron is not created; the thread's create_run refusing refuses it too
    for answer in ("false",):
        seen.clear()
        response = await api.respond("POST", "/runs/crons", json=body, headers={"x-answer": answer})
        assert response.status_code == 403 and [action for _, action, _ in seen] == ["create"]
    assert await api.call("POST", "/runs/crons/count", {}) == 0
