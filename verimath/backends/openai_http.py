"""The OpenAI-compatible HTTP backend: vLLM serve, SGLang, llama.cpp server, hosted APIs.

Each completion is one request with ``n=1`` and its own seed (:func:`derive_seed`), so per-
completion token counts come straight from ``usage`` and duplicate prompts get different
samples; servers with prefix caching make the repeated prompts cheap. Requests run on a thread
pool of ``max_concurrency`` over one pooled ``httpx.Client``.

Endpoints:

- raw string prompt: ``POST {base_url}/completions``;
- chat: ``POST {base_url}/chat/completions``; a chat whose last message is the assistant's is
  sent with ``continue_final_message: true, add_generation_prompt: false`` (vLLM / SGLang
  extensions; hosted APIs reject it with a 4xx, raised as :class:`BackendError`);
- with ``extra={"tokenizer": <dir or hub id>}`` chats are rendered locally with that tokenizer's
  chat template and sent to ``/completions``: exact text, continuation on any server, and
  :meth:`OpenAIBackend.render` is the real prompt.

Failures: connection errors, timeouts and HTTP 5xx (and 408/429, which servers use for "busy,
try again") are retried ``max_retries`` times with exponential backoff and jitter, honouring
``Retry-After``. Other 4xx are the request's own fault and raise at once. Whatever is still
failing raises :class:`BackendError`; no empty completion is ever returned for a failure.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from verimath.backends.base import (
    BackendConfig,
    BackendError,
    Completion,
    Prompt,
    SamplingParams,
    derive_seed,
    find_stop,
    is_continuation,
    regroup,
    render_with_tokenizer,
    sample_keys,
    validate_prompt,
)

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429})  # plus every 5xx
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIBackend:
    """Generation through an OpenAI-compatible server (see the module docstring).

    Args:
        config: ``base_url``, ``model``, ``api_key_env``, ``max_concurrency``,
            ``request_timeout_s``, ``max_retries`` are used; ``extra`` may hold ``tokenizer``
            (render chats locally), ``retry_backoff_s`` (first backoff, default 0.5 s) and
            ``max_backoff_s`` (cap, default 20 s).
    """

    name = "openai"

    def __init__(self, config: BackendConfig) -> None:
        import httpx

        self.config = config
        base = config.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base.rstrip("/")
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._httpx = httpx
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(config.request_timeout_s),
            limits=httpx.Limits(max_connections=config.max_concurrency,
                                max_keepalive_connections=config.max_concurrency))
        self._pool = ThreadPoolExecutor(max_workers=config.max_concurrency,
                                        thread_name_prefix="verimath-openai")
        self._backoff_s = float(config.extra.get("retry_backoff_s", 0.5))
        self._max_backoff_s = float(config.extra.get("max_backoff_s", 20.0))
        self.tokenizer: Any = None
        tok = config.extra.get("tokenizer")
        if tok:
            from transformers import AutoTokenizer

            from verimath.backends.default_model import resolve_model

            self.tokenizer = AutoTokenizer.from_pretrained(resolve_model(str(tok))[0])
        self._closed = threading.Event()
        self.model_id = config.model
        if config.model.lower() == "default":
            self.model_id = self._served_model()

    # --------------------------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call with retries; returns the decoded JSON body."""
        httpx = self._httpx
        url = f"{self.base_url}{path}"
        attempts = self.config.max_retries + 1
        problem = ""
        for attempt in range(attempts):
            if self._closed.is_set():
                raise BackendError(f"{url}: backend closed")
            retry_after = None
            try:
                resp = self._client.request(method, url, json=body)
            except httpx.TimeoutException as e:
                problem = (f"timed out after {self.config.request_timeout_s:g}s "
                           f"({type(e).__name__})")
            except httpx.TransportError as e:
                problem = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except ValueError as e:
                        raise BackendError(f"{url}: HTTP {resp.status_code} with a body that is "
                                           f"not JSON: {resp.text[:300]!r}") from e
                problem = f"HTTP {resp.status_code}: {resp.text[:500]}"
                if resp.status_code < 500 and resp.status_code not in RETRY_STATUS:
                    raise BackendError(f"{url}: {problem} (not retried: the server rejected "
                                       "the request itself; check the model name and parameters)")
                retry_after = _retry_after(resp.headers.get("retry-after"))
            if attempt + 1 < attempts:
                delay = min(self._max_backoff_s, self._backoff_s * 2 ** attempt)
                delay *= 0.5 + random.random() / 2
                if retry_after is not None:
                    delay = min(max(delay, retry_after), self._max_backoff_s)
                log.warning("%s: %s; retry %d/%d in %.2fs", url, problem, attempt + 1,
                            attempts - 1, delay)
                time.sleep(delay)
        raise BackendError(f"{url}: {problem} (gave up after {attempts} attempt"
                           f"{'s' if attempts > 1 else ''})")

    def _served_model(self) -> str:
        data = self._request("GET", "/models")
        try:
            return str(data["data"][0]["id"])
        except (KeyError, IndexError, TypeError) as e:
            raise BackendError(f"{self.base_url}/models lists no model ({json.dumps(data)[:300]}); "
                               "set BackendConfig.model to the served model name") from e

    # ---------------------------------------------------------------------------- rendering
    def render(self, prompt: Prompt) -> str:
        """The prompt text; exact for raw strings and with a local ``extra["tokenizer"]``.

        Otherwise chats are rendered as canonical JSON of the messages: the server applies its
        own template, which this client cannot see; the JSON is stable, so fit for hashing.
        """
        prompt = validate_prompt(prompt, 0)
        if isinstance(prompt, str) or self.tokenizer is not None:
            return render_with_tokenizer(self.tokenizer, prompt, self.model_id)
        return json.dumps(prompt, ensure_ascii=False, sort_keys=True)

    # ---------------------------------------------------------------------------- generation
    def _body(self, prompt: Prompt, params: SamplingParams, seed: int) -> tuple[str, dict]:
        body: dict[str, Any] = {
            "model": self.model_id, "max_tokens": params.max_tokens,
            "temperature": params.temperature, "top_p": params.top_p, "n": 1, "seed": seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if isinstance(prompt, str) or self.tokenizer is not None:
            body["prompt"] = self.render(prompt)
            if params.logprobs:
                body["logprobs"] = 1
            return "/completions", body
        body["messages"] = prompt
        if is_continuation(prompt):
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if params.logprobs:
            body["logprobs"] = True
        return "/chat/completions", body

    def _one(self, prompt: Prompt, params: SamplingParams, seed: int) -> Completion:
        path, body = self._body(prompt, params, seed)
        data = self._request("POST", path, body)
        try:
            choice = data["choices"][0]
            text = choice["text"] if path == "/completions" else choice["message"]["content"]
            text = text or ""
            finish = choice.get("finish_reason")
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError) as e:
            raise BackendError(f"{self.base_url}{path}: malformed response "
                               f"{json.dumps(data)[:300]}") from e
        if finish in ("abort", "error"):
            raise BackendError(f"{self.base_url}{path}: generation ended with {finish!r}")
        stop_reason = choice.get("stop_reason")
        stop_reason = stop_reason if isinstance(stop_reason, str) and stop_reason in params.stop \
            else None
        hit = find_stop(text, params.stop)  # servers that ignore `stop` still honour it here
        if hit is not None:
            text, stop_reason, finish = text[:hit[0]], hit[1], "stop"
        logprob = _sum_logprobs(choice.get("logprobs")) if params.logprobs else None
        return Completion(
            text=text, finish_reason="length" if finish == "length" else "stop",
            stop_reason=stop_reason, prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cumulative_logprob=logprob)

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions per prompt, in input order, ``max_concurrency`` at a time.

        Raises:
            BackendError: a request still failing after retries, a rejected request (4xx) or a
                malformed response; requests not yet started are cancelled.
        """
        for i, p in enumerate(prompts):
            validate_prompt(p, i)
        futures = {(i, j): self._pool.submit(self._one, prompts[i], params,
                                             derive_seed(params.seed, i, j))
                   for i, j in sample_keys(len(prompts), params)}
        finished, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        failed = next((f for f in finished if f.exception() is not None), None)
        if failed is not None:
            for f in futures.values():
                f.cancel()
            raise failed.exception()  # type: ignore[misc]
        return regroup({k: f.result() for k, f in futures.items()}, len(prompts), params)

    def close(self) -> None:
        """Cancel queued requests and close the connection pool. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _sum_logprobs(lp: Any) -> float | None:
    """Sum of token logprobs from a completions (``token_logprobs``) or chat (``content``) block."""
    if not isinstance(lp, dict):
        return None
    if isinstance(lp.get("token_logprobs"), list):
        vals = lp["token_logprobs"]
    elif isinstance(lp.get("content"), list):
        vals = [t.get("logprob") for t in lp["content"] if isinstance(t, dict)]
    else:
        return None
    return float(sum(v for v in vals if v is not None))
