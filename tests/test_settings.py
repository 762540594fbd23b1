"""Configuration: defaults, environment overrides, and one-line errors for bad values."""

from pathlib import Path

import pytest

from src.settings import ConfigError, load_settings, redact

CONFIG = Path(__file__).resolve().parent.parent / "config.yml"


def settings(**env: str) -> dict:
    return load_settings(CONFIG, environ=env)


def config_error(**env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        settings(**env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_come_from_config_yml():
    loaded = settings()
    assert loaded["database"] == {
        "url": None,
        "pool_min_size": 2,
        "pool_max_size": 10,
        "pool_timeout": 30.0,
        "connect_timeout": 5.0,
        "pool_check_idle": 1.0,
    }
    assert loaded["server"] == {
        "host": "127.0.0.1",
        "port": 8123,
        "log_level": "INFO",
        "log_format": "text",
        "access_log": True,
        "max_body_bytes": 10 * 1024 * 1024,
        "allowed_hosts": ["localhost", ".localhost", "127.0.0.1", "::1"],
        "workers": 1,
    }
    queue = {key: loaded["runs"][key] for key in ("lease_seconds", "heartbeat_seconds", "poll_seconds", "max_attempts")}
    assert queue == {"lease_seconds": 6.0, "heartbeat_seconds": 2.0, "poll_seconds": 5.0, "max_attempts": 3}
    assert loaded["model"]["name"] == "offline:deterministic"
    assert loaded["config_file"] == str(CONFIG)


def test_environment_overrides_the_file():
    loaded = settings(
        DATABASE_POOL_MIN_SIZE="1",
        DATABASE_POOL_MAX_SIZE="4",
        DATABASE_POOL_TIMEOUT="2.5",
        PORT="9000",
        LOG_LEVEL="debug",
        RUNS_MAX_CONCURRENCY="3",
        DATABASE_POOL_CHECK_IDLE="0",
    )
    assert loaded["database"]["pool_min_size"] == 1
    assert loaded["database"]["pool_max_size"] == 4
    assert loaded["database"]["pool_timeout"] == 2.5
    assert loaded["server"]["port"] == 9000
    assert loaded["server"]["log_level"] == "DEBUG"
    assert loaded["runs"]["max_concurrency"] == 3
    assert loaded["database"]["pool_check_idle"] == 0.0


def test_flags_win_over_environment():
    loaded = load_settings(CONFIG, environ={"PORT": "9000"}, overrides={"server.port": "9100"})
    assert loaded["server"]["port"] == 9100


def test_config_file_from_environment(tmp_path: Path):
    other = tmp_path / "other.yml"
    other.write_text("server:\n  port: 7001\n")
    loaded = load_settings(environ={"CONFIG_FILE": str(other)})
    assert loaded["server"]["port"] == 7001
    assert loaded["config_dir"] == str(tmp_path)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_POOL_MAX_SIZE": "abc"}, "DATABASE_POOL_MAX_SIZE='abc' is invalid: expected an integer >= 1"),
        ({"DATABASE_POOL_MIN_SIZE": "-1"}, "DATABASE_POOL_MIN_SIZE='-1' is invalid: expected an integer >= 0"),
        ({"DATABASE_POOL_TIMEOUT": "-3"}, "DATABASE_POOL_TIMEOUT='-3' is invalid: expected a number of seconds > 0"),
        ({"DATABASE_POOL_TIMEOUT": "soon"}, "DATABASE_POOL_TIMEOUT='soon' is invalid"),
        (
            {"DATABASE_POOL_CHECK_IDLE": "-1"},
            "DATABASE_POOL_CHECK_IDLE='-1' is invalid: expected a number of seconds >= 0",
        ),
        ({"PORT": "70000"}, "PORT='70000' is invalid: expected a TCP port 0-65535"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is invalid: expected one of DEBUG"),
        ({"MODEL": "gpt"}, "MODEL='gpt' is invalid: expected 'provider:model'"),
        (
            {"DATABASE_POOL_MIN_SIZE": "5", "DATABASE_POOL_MAX_SIZE": "2"},
            "database.pool_min_size=5 is greater than database.pool_max_size=2",
        ),
        ({"WORKERS": "0"}, "WORKERS='0' is invalid: expected an integer >= 1"),
        ({"WORKERS": "2"}, "server.workers=2 needs Postgres"),
        ({"RUNS_MAX_ATTEMPTS": "0"}, "RUNS_MAX_ATTEMPTS='0' is invalid: expected an integer >= 1"),
        ({"RUNS_LEASE_SECONDS": "0"}, "RUNS_LEASE_SECONDS='0' is invalid: expected a number of seconds > 0"),
        (
            {"RUNS_LEASE_SECONDS": "2", "RUNS_HEARTBEAT_SECONDS": "2"},
            "runs.heartbeat_seconds=2 is not less than runs.lease_seconds=2",
        ),
    ],
)
def test_bad_values_name_the_setting_the_value_and_the_expectation(env, expected):
    assert expected in config_error(**env)


def test_bad_url_is_rejected_with_the_password_redacted():
    message = config_error(DATABASE_URL="mysql://app:hunter2@db/x")
    assert "DATABASE_URL='mysql://app:***@db/x'" in message
    assert "postgresql://" in message
    assert "hunter2" not in message


def test_local_url_gets_sslmode_disable_but_remote_and_explicit_do_not():
    local = settings(DATABASE_URL="postgresql://u:p@localhost:5432/db")["database"]["url"]
    assert local == "postgresql://u:p@localhost:5432/db?sslmode=disable"
    explicit = settings(DATABASE_URL="postgres://u@127.0.0.1/db?sslmode=require")["database"]["url"]
    assert explicit == "postgres://u@127.0.0.1/db?sslmode=require"
    remote = settings(DATABASE_URL="postgresql://u@db.example.internal/db")["database"]["url"]
    assert remote == "postgresql://u@db.example.internal/db"


def test_unknown_setting_and_bad_yaml(tmp_path: Path):
    typo = tmp_path / "typo.yml"
    typo.write_text("database:\n  pool_max: 3\n")
    with pytest.raises(ConfigError, match="unknown setting database.'pool_max'"):
        load_settings(typo, environ={})
    broken = tmp_path / "broken.yml"
    broken.write_text("server: [\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_settings(broken, environ={})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path / "missing.yml", environ={})


SECRET = "s3cret"
# Each way a connection string can carry a password, as typed and as it must be shown.
SECRET_FORMS = [
    ("postgresql://user:s3cret@host:5432/db", "postgresql://user:***@host:5432/db"),
    ("postgres://:s3cret@host/db", "postgres://:***@host/db"),
    ("postgresql://user:s3c@r#t?s3cret@host/db", "postgresql://user:***@host/db"),
    ("postgresql://user@host/db?password=s3cret", "postgresql://user@host/db?password=***"),
    ("postgresql://u@h/db?sslmode=require&password=s3cret&x=1", "postgresql://u@h/db?sslmode=require&password=***&x=1"),
    ("postgresql://u@h/db?sslpassword=s3cret", "postgresql://u@h/db?sslpassword=***"),
    ("host=h password=s3cret dbname=db", "host=h password=*** dbname=db"),
    ("host=h password = s3cret dbname=db", "host=h password = *** dbname=db"),
    ("host=h password='s3cret with blanks' dbname=db", "host=h password=*** dbname=db"),
    ("host=h password='it\\'s s3cret' dbname=db", "host=h password=*** dbname=db"),
    ("host=h password=s3cret\\ too dbname=db", "host=h password=*** dbname=db"),
    ("host=h sslpassword=s3cret", "host=h sslpassword=***"),
    ("PASSWORD=s3cret", "PASSWORD=***"),
]


@pytest.mark.parametrize(("text", "shown"), SECRET_FORMS)
def test_redact_every_form(text, shown):
    assert redact(text) == shown
    assert redact(f"cannot connect to {text}: refused") == f"cannot connect to {shown}: refused"
    # A config error shows the value redacted, and the whole line is redacted again on its way out.
    assert redact(f"DATABASE_URL={redact(text)!r} is invalid") == f"DATABASE_URL={shown!r} is invalid"


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://user@host:5432/db?sslmode=disable",
        "http://host:8080/path?x=1",
        'connection to server at "127.0.0.1", port 5432 failed: FATAL: password authentication failed for user "u"',
        "host=h dbname=db mypassword=x",
    ],
)
def test_redact_leaves_everything_else_alone(text):
    assert redact(text) == text


def test_redact_an_unterminated_quoted_password_to_the_end():
    assert redact("missing quote in host=h password='s3cret and: more") == "missing quote in host=h password=***"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:s3cret@db:abc/x", "DATABASE_URL='postgresql://app:***@db:abc/x' is invalid: port 'abc'"),
        (
            "postgresql://app@db:abc/x?password=s3cret",
            "'postgresql://app@db:abc/x?password=***' is invalid",
        ),
        ("postgresql://app@db/x?password=s3cret&colour=red", 'invalid URI query parameter: "..."'),
        ("postgresql://app:s3%cret@db/x", 'invalid percent-encoded token: "..."'),
        ("mysql://app@db/x?password=s3cret", "DATABASE_URL='mysql://app@db/x?password=***' is invalid"),
        ("host=db port=abc password=s3cret", "DATABASE_URL='host=db port=abc password=***' is invalid: port 'abc'"),
        ("host=db port=abc password='s3cret and more'", "DATABASE_URL='host=db port=abc password=***' is invalid"),
        ("host=db password=s3cret and more", "DATABASE_URL is invalid (value not shown, it may hold a password)"),
        ("host=db password='s3cret unterminated", "unterminated quoted string"),
    ],
)
def test_config_errors_never_show_a_password(url, expected):
    message = config_error(DATABASE_URL=url)
    assert expected in message
    assert SECRET not in message and "s3%cret" not in message


def test_key_value_connection_strings_are_accepted():
    local = settings(DATABASE_URL="host=127.0.0.1 dbname=db password='two words'")["database"]["url"]
    assert local == "password='two words' dbname=db host=127.0.0.1 sslmode=disable"
    remote = "host=db.example.internal dbname=db password=x"
    assert settings(DATABASE_URL=remote)["database"]["url"] == remote
    socket_url = settings(DATABASE_URL="postgresql:///db?host=/var/run/postgresql")["database"]["url"]
    assert socket_url == "postgresql:///db?host=/var/run/postgresql&sslmode=disable"
    behind = "postgresql://u@localhost/db?hostaddr=10.0.0.5"
    assert settings(DATABASE_URL=behind)["database"]["url"] == behind


def test_webhook_allow_list_is_normalised_and_loopback_is_an_alias():
    assert settings()["runs"]["webhooks_allowed_hosts"] == ()
    loaded = settings(WEBHOOKS_ALLOWED_HOSTS=" Hooks.Internal., 10.1.2.3/8,192.168.1.5, [fd00::1],,")
    assert loaded["runs"]["webhooks_allowed_hosts"] == ("hooks.internal", "10.0.0.0/8", "192.168.1.5/32", "fd00::1/128")
    loopback = settings(WEBHOOKS_ALLOW_LOOPBACK="true", WEBHOOKS_ALLOWED_HOSTS="hooks.internal")
    assert loopback["runs"]["webhooks_allowed_hosts"] == ("hooks.internal", "127.0.0.0/8", "::1/128")


def test_webhook_allow_list_as_a_yaml_list(tmp_path: Path):
    config = tmp_path / "config.yml"
    config.write_text("runs:\n  webhooks_allowed_hosts: [hooks.internal, 172.16.0.0/12]\n")
    loaded = load_settings(config, environ={})
    assert loaded["runs"]["webhooks_allowed_hosts"] == ("hooks.internal", "172.16.0.0/12")


@pytest.mark.parametrize("entry", ["10.1", "999.1.1.1", "http://hooks.internal", "*.internal", "a b", "10.0.0.0/33"])
def test_bad_webhook_allow_list_entries_are_named(entry):
    message = config_error(WEBHOOKS_ALLOWED_HOSTS=f"hooks.internal,{entry}")
    expected = f"WEBHOOKS_ALLOWED_HOSTS='hooks.internal,{entry}' is invalid: {entry!r} is not a host name"
    assert message.startswith(expected)
    assert "expected a comma-separated list" in message
