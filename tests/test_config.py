"""Configuration: defaults, environment, test mapping, fail-fast, and the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import QueryableAttribute

from commentsvc import create_app
from commentsvc.config import (
    SETTINGS,
    ConfigError,
    instance_folder,
    load_config,
    settings_table,
)
from commentsvc.models import Comment, Page
from commentsvc.settings import MAX_BODY_LIMIT, SETTINGS_BY_NAME
from commentsvc.worker import BODY_BUFFER

README = Path(__file__).resolve().parent.parent / "README.md"
KEY = "0123456789abcdef0123456789abcdef"


def test_readme_table_matches_settings() -> None:
    text = README.read_text("utf-8")
    match = re.search(r"<!-- config-table:start -->\n(.*?)\n<!-- config-table:end -->", text, re.S)
    assert match, "README has no configuration table"
    assert match.group(1).strip() == settings_table()


def test_the_instance_folder_is_the_one_flask_finds_for_the_package() -> None:
    """gunicorn's master reads the settings from it without loading Flask; the app is given
    it. Both must be the folder Flask would choose (the image links it to /data)."""
    assert instance_folder() == Flask("commentsvc").instance_path
    assert create_app({"SECRET_KEY": KEY}).instance_path == instance_folder()


@pytest.mark.parametrize(
    ("package_dir", "prefix", "folder"),
    [
        # a checkout (an editable install included)
        ("/src/commentsvc/commentsvc", "/src/commentsvc/.venv", "/src/commentsvc/instance"),
        # a virtual environment, as in the image
        (
            "/opt/venv/lib/python3.11/site-packages/commentsvc",
            "/opt/venv",
            "/opt/venv/var/commentsvc-instance",
        ),
        # the system's Python
        ("/usr/lib/python3/dist-packages/commentsvc", "/usr", "/usr/var/commentsvc-instance"),
        # the user's site-packages
        (
            "/home/ann/.local/lib/python3.11/site-packages/commentsvc",
            "/usr",
            "/home/ann/.local/var/commentsvc-instance",
        ),
        ("/srv/lib/site-packages/commentsvc", "/usr", "/srv/var/commentsvc-instance"),
        ("/srv/site-packages/commentsvc", "/usr", "/srv/var/commentsvc-instance"),
    ],
)
def test_the_instance_folder_follows_flasks_rule_where_the_package_is_installed(
    package_dir: str, prefix: str, folder: str
) -> None:
    assert instance_folder(package_dir, prefix) == folder


def test_defaults(tmp_path: Path) -> None:
    config = load_config(str(tmp_path), environ={"COMMENTSVC_SECRET_KEY": KEY})
    for setting in SETTINGS:
        if setting.default is not None:
            assert config[setting.name] == setting.default, setting.name
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'commentsvc.db'}"


def test_environment_overrides_defaults_and_mapping_overrides_environment(tmp_path: Path) -> None:
    environ = {
        "COMMENTSVC_SECRET_KEY": KEY,
        "COMMENTSVC_MAX_BODY_LENGTH": "200",
        "COMMENTSVC_RATELIMIT_ENABLED": "false",
    }
    config = load_config(str(tmp_path), environ=environ, overrides={"MAX_NAME_LENGTH": 7})
    assert config["MAX_BODY_LENGTH"] == 200
    assert config["RATELIMIT_ENABLED"] is False
    assert config["MAX_NAME_LENGTH"] == 7


def test_the_env_file_in_the_instance_folder_is_read_and_the_environment_wins(
    tmp_path: Path,
) -> None:
    (tmp_path / "commentsvc.env").write_text(
        "# the demo's settings\n"
        f"COMMENTSVC_SECRET_KEY='{KEY}$x'\n"
        "export COMMENTSVC_MAX_BODY_LENGTH=300\n"
        "COMMENTSVC_LOG_FORMAT=text\n",
        "utf-8",
    )
    config = load_config(str(tmp_path), environ={"COMMENTSVC_LOG_FORMAT": "json"})
    assert config["SECRET_KEY"] == KEY + "$x"  # as written, nothing expanded
    assert config["MAX_BODY_LENGTH"] == 300
    assert config["LOG_FORMAT"] == "json"


def test_commentsvc_env_file_names_another_file(tmp_path: Path) -> None:
    (tmp_path / "commentsvc.env").write_text("COMMENTSVC_MAX_BODY_LENGTH=300\n", "utf-8")
    other = tmp_path / "production.env"
    other.write_text(f"COMMENTSVC_SECRET_KEY={KEY}\nCOMMENTSVC_MAX_BODY_LENGTH=400\n", "utf-8")
    config = load_config(str(tmp_path), environ={"COMMENTSVC_ENV_FILE": str(other)})
    assert config["MAX_BODY_LENGTH"] == 400
    missing = {"COMMENTSVC_ENV_FILE": str(tmp_path / "nowhere.env")}
    with pytest.raises(ConfigError, match=r"COMMENTSVC_ENV_FILE: cannot read .*nowhere\.env"):
        load_config(str(tmp_path), environ=missing)


@pytest.mark.parametrize(
    "line", ["COMMENTSVC_SECRT_KEY=x", "POSTGRES_PASSWORD=x", "COMMENTSVC_ENV_FILE=other.env"]
)
def test_the_env_file_names_only_settings(tmp_path: Path, line: str) -> None:
    (tmp_path / "commentsvc.env").write_text(f"COMMENTSVC_SECRET_KEY={KEY}\n{line}\n", "utf-8")
    name = line.partition("=")[0]
    with pytest.raises(ConfigError, match=f"commentsvc.env: {name} is not a setting"):
        load_config(str(tmp_path), environ={})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("COMMENTSVC_PANEL_PAGE_SIZE", "abc", "must be a whole number, not 'abc'"),
        ("COMMENTSVC_PANEL_PAGE_SIZE", "2.5", "must be a whole number, not '2.5'"),
        ("COMMENTSVC_RATELIMIT_ENABLED", "maybe", "must be true or false, not 'maybe'"),
    ],
)
def test_a_value_of_the_wrong_kind_is_said_in_words(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(str(tmp_path), environ={"COMMENTSVC_SECRET_KEY": KEY, variable: value})
    assert str(refused.value) == f"{variable} {message}"


def test_production_refuses_to_start_without_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="COMMENTSVC_SECRET_KEY"):
        load_config(str(tmp_path), environ={})


@pytest.mark.parametrize("key", ["short", "changeme", "CHANGE-ME", "your-secret-key"])
def test_production_refuses_a_placeholder_or_short_secret_key(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match="COMMENTSVC_SECRET_KEY is a placeholder or shorter"):
        load_config(str(tmp_path), environ={"COMMENTSVC_SECRET_KEY": key})


def test_development_accepts_any_secret_key(tmp_path: Path) -> None:
    environ = {"COMMENTSVC_ENV": "development", "COMMENTSVC_SECRET_KEY": "dev"}
    assert load_config(str(tmp_path), environ=environ)["SECRET_KEY"] == "dev"


def test_postgresql_connections_give_up_after_the_database_timeout(tmp_path: Path) -> None:
    environ = {
        "COMMENTSVC_SECRET_KEY": KEY,
        "COMMENTSVC_DATABASE_URL": "postgresql+psycopg://u@db.example/comments",
        "COMMENTSVC_DATABASE_TIMEOUT_SECONDS": "3",
    }
    options = load_config(str(tmp_path), environ=environ)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options == {
        "pool_pre_ping": True,
        "pool_timeout": 3,
        "connect_args": {"connect_timeout": 3},
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_TIMEOUT_SECONDS", "0"),
        ("MAX_BODY_LENGTH", "many"),
        ("MAX_BODY_LENGTH", "0"),
        ("RATELIMIT_ENABLED", "perhaps"),
        ("ENV", "staging"),
        ("SQLITE_SYNCHRONOUS", "OFF"),
        ("SUBMIT_RATE_LIMIT", "five per minute"),
        ("SUBMIT_RATE_LIMIT", "5/fortnight"),
        ("PREVIEW_RATE_LIMIT", "thirty a minute"),
        ("RATELIMIT_STORAGE_URI", "http://cache.internal:6379"),
        ("RATELIMIT_STORAGE_URI", "redis://localhost:notaport/0"),
        ("RATELIMIT_STORAGE_URI", "localhost:6379"),
        ("RATELIMIT_FAIL_OPEN", "sometimes"),
        ("TRUSTED_HOSTS", "https://comments.example.com"),
        ("TRUSTED_HOSTS", "comments.example.com/moderation"),
        ("TRUSTED_HOSTS", "comments.example.com:0"),
        ("TRUSTED_HOSTS", "comments.example.com:65536"),
        ("TRUSTED_HOSTS", "comments example com"),
        ("TRUSTED_HOSTS", " , "),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    environ = {"COMMENTSVC_SECRET_KEY": KEY, f"COMMENTSVC_{name}": value}
    with pytest.raises(ConfigError, match=f"COMMENTSVC_{name}"):
        load_config(str(tmp_path), environ=environ)


@pytest.mark.parametrize(
    "uri", ["redis://127.0.0.1:6379/0", "rediss://user:pw@cache:6380/1", "redis+unix:///run/r.sock"]
)
def test_redis_storage_uris_are_accepted_without_connecting(tmp_path: Path, uri: str) -> None:
    environ = {"COMMENTSVC_SECRET_KEY": KEY, "COMMENTSVC_RATELIMIT_STORAGE_URI": uri}
    assert load_config(str(tmp_path), environ=environ)["RATELIMIT_STORAGE_URI"] == uri


def test_trusted_hosts_are_unset_by_default_and_read_as_a_list_of_names(tmp_path: Path) -> None:
    default = load_config(str(tmp_path), environ={"COMMENTSVC_SECRET_KEY": KEY})
    assert default["TRUSTED_HOSTS"] is None
    environ = {
        "COMMENTSVC_SECRET_KEY": KEY,
        "COMMENTSVC_TRUSTED_HOSTS": " Comments.Example.com, 127.0.0.1:8000,,.example.org ",
    }
    config = load_config(str(tmp_path), environ=environ)
    assert config["TRUSTED_HOSTS"] == ["comments.example.com", "127.0.0.1:8000", ".example.org"]


def test_trusted_hosts_from_the_environment_refuse_other_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMENTSVC_TRUSTED_HOSTS", "comments.example.com")
    app = create_app(
        {"ENV": "testing", "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    )
    client = app.test_client()
    assert client.get("/widget.js", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/widget.js", headers={"Host": "comments.example.com"}).status_code == 200


def test_behind_trusted_proxies_the_forwarded_host_is_the_one_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMENTSVC_TRUSTED_HOSTS", "comments.example.com")
    monkeypatch.setenv("COMMENTSVC_TRUSTED_PROXIES", "1")
    app = create_app(
        {"ENV": "testing", "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    )
    client = app.test_client()
    forwarded = {"Host": "127.0.0.1:8000", "X-Forwarded-Host": "comments.example.com"}
    assert client.get("/widget.js", headers=forwarded).status_code == 200
    forged = {"Host": "comments.example.com", "X-Forwarded-Host": "evil.example"}
    assert client.get("/widget.js", headers=forged).status_code == 400


def test_development_key_is_shared_by_every_process(tmp_path: Path) -> None:
    first = load_config(str(tmp_path), environ={"COMMENTSVC_ENV": "development"})
    second = load_config(str(tmp_path), environ={"COMMENTSVC_ENV": "development"})
    assert len(first["SECRET_KEY"]) == 64
    assert first["SECRET_KEY"] == second["SECRET_KEY"]


@pytest.mark.sqlite_only
def test_sqlite_pragmas_for_several_workers(app) -> None:  # type: ignore[no-untyped-def]
    from commentsvc.extensions import db

    with app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_create_app_takes_a_test_mapping(tmp_path: Path) -> None:
    app = create_app(
        {"ENV": "testing", "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    )
    assert app.config["SECRET_KEY"] == "x"
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("/a.db")


def test_a_configuration_error_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTSVC_")}
    env["COMMENTSVC_ENV_FILE"] = os.devnull  # not the demo's, which has a key
    env["COMMENTSVC_DATABASE_URL"] = f"sqlite:///{tmp_path}/a.db"
    script = Path(sys.executable).with_name("commentsvc")
    result = subprocess.run(
        [str(script), "sites", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "commentsvc: configuration error: COMMENTSVC_SECRET_KEY is not set: set it to a long "
        "random string (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
    ]

    env.update(COMMENTSVC_SECRET_KEY=KEY, COMMENTSVC_SUBMIT_RATE_LIMIT="lots")
    result = subprocess.run(
        [str(script), "sites", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("commentsvc: configuration error: COMMENTSVC_SUBMIT_RATE_LIMIT: ")


#: Each length setting, and the columns whose width bounds it.
LENGTH_COLUMNS: dict[str, list[QueryableAttribute[str | None]]] = {
    "MAX_NAME_LENGTH": [Comment.author_name],
    "MAX_EMAIL_LENGTH": [Comment.author_email],
    "MAX_URL_LENGTH": [Comment.author_url, Comment.page_url, Page.url],
    "MAX_PAGE_KEY_LENGTH": [Page.key],
    "MAX_PAGE_TITLE_LENGTH": [Comment.page_title, Page.title],
    "MAX_USER_AGENT_LENGTH": [Comment.user_agent],
}


@pytest.mark.parametrize("name", sorted(LENGTH_COLUMNS))
def test_length_settings_stop_at_their_columns_width(tmp_path: Path, name: str) -> None:
    setting = next(setting for setting in SETTINGS if setting.name == name)
    widths = {column.type.length for column in LENGTH_COLUMNS[name]}
    assert setting.maximum is not None
    assert setting.maximum == min(widths)
    assert setting.default <= setting.maximum
    environ = {"COMMENTSVC_SECRET_KEY": KEY, setting.env_name: str(setting.maximum)}
    assert load_config(str(tmp_path), environ=environ)[name] == setting.maximum
    environ[setting.env_name] = str(setting.maximum + 1)
    with pytest.raises(ConfigError, match=f"{setting.env_name} must be at most {setting.maximum}"):
        load_config(str(tmp_path), environ=environ)


def test_the_body_length_has_a_maximum(tmp_path: Path) -> None:
    """The longest comment fits the default request size (tests/api/test_submit_bad_input.py
    sends it), and bounds what one submission costs to render."""
    setting = SETTINGS_BY_NAME["MAX_BODY_LENGTH"]
    assert setting.maximum == MAX_BODY_LIMIT
    assert SETTINGS_BY_NAME["MAX_CONTENT_LENGTH"].default > 12 * MAX_BODY_LIMIT
    environ = {"COMMENTSVC_SECRET_KEY": KEY, setting.env_name: str(MAX_BODY_LIMIT)}
    assert load_config(str(tmp_path), environ=environ)["MAX_BODY_LENGTH"] == MAX_BODY_LIMIT
    environ[setting.env_name] = str(MAX_BODY_LIMIT + 1)
    with pytest.raises(ConfigError, match=f"must be at most {MAX_BODY_LIMIT} "):
        load_config(str(tmp_path), environ=environ)


def test_the_largest_request_body_is_what_the_server_reads_ahead(tmp_path: Path) -> None:
    """The worker refuses a body larger than it reads ahead (a slow client would hold the
    application while it sent it): the setting cannot allow a larger one."""
    assert SETTINGS_BY_NAME["MAX_CONTENT_LENGTH"].maximum == BODY_BUFFER
    environ = {"COMMENTSVC_SECRET_KEY": KEY, "COMMENTSVC_MAX_CONTENT_LENGTH": str(BODY_BUFFER)}
    assert load_config(str(tmp_path), environ=environ)["MAX_CONTENT_LENGTH"] == BODY_BUFFER
    environ["COMMENTSVC_MAX_CONTENT_LENGTH"] = str(BODY_BUFFER + 1)
    with pytest.raises(ConfigError, match=f"MAX_CONTENT_LENGTH must be at most {BODY_BUFFER} "):
        load_config(str(tmp_path), environ=environ)
