"""The tests' Redis (tests/support/redis.py): the shared one, emptied for each test, and private
servers that a test may stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.support.redis import (
    URL_VARIABLE,
    RedisServer,
    flush_all,
    free_port,
    quick_options,
    shared_redis_url,
)


def test_the_shared_redis_answers_and_starts_empty(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url, **quick_options()) as client:
        assert client.ping()
        assert client.dbsize() == 0
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"


def test_the_fixture_empties_what_an_earlier_test_left(request: pytest.FixtureRequest) -> None:
    with redis.Redis.from_url(shared_redis_url(), **quick_options()) as client:
        client.set("left-over", "from an earlier test")
        assert client.dbsize() >= 1
        url = request.getfixturevalue("redis_url")
        assert url == shared_redis_url()
        assert client.dbsize() == 0


def test_the_variable_names_the_shared_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_VARIABLE, "redis://127.0.0.1:6399/2")
    assert shared_redis_url() == "redis://127.0.0.1:6399/2"


def test_an_unreachable_redis_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"ensure-redis\.sh"):
        flush_all(f"redis://127.0.0.1:{free_port()}/0")


def test_a_private_server_is_its_own_and_keeps_nothing_on_disk(redis_server: RedisServer) -> None:
    assert redis_server.url != shared_redis_url()
    with redis_server.client() as client:
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}


def test_a_stopped_server_refuses_ping(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        assert client.ping()
        redis_server.stop()
        assert not redis_server.running
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()


def test_a_restarted_server_keeps_its_url_but_not_its_data(redis_server: RedisServer) -> None:
    url = redis_server.url
    with redis_server.client() as client:
        client.set("key", "value")
        redis_server.stop()
        redis_server.start()
        assert redis_server.url == url
        assert client.ping()
        assert client.get("key") is None


def test_without_redis_server_starting_one_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"ensure-redis\.sh.*apt-get install redis-server"):
        RedisServer(tmp_path).start()
