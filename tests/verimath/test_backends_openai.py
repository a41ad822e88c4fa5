"""The OpenAI-compatible backend against a fake server on 127.0.0.1 (http.server in a thread)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from verimath.backends import BackendConfig, BackendError, SamplingParams, load_backend


@dataclass
class FakeState:
    """What the fake server does and saw."""

    fail_with: list[int] = field(default_factory=list)  # statuses for the next POSTs, in order
    hang: bool = False
    delay_s: float = 0.0
    honor_stop: bool = True
    text: str = "the answer is 42 STOP and then more"
    requests: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: FakeState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "fake-model"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append((self.path, body, dict(self.headers)))
                status = state.fail_with.pop(0) if state.fail_with else 200
                state.inflight += 1
                state.max_inflight = max(state.max_inflight, state.inflight)
            try:
                if state.hang:
                    state.release.wait(30)
                    return
                time.sleep(state.delay_s)
                if status != 200:
                    self._send(status, {"error": {"message": f"fake {status}"}})
                    return
                self._send(200, self._complete(body))
            finally:
                with state.lock:
                    state.inflight -= 1

        def _complete(self, body: dict[str, Any]) -> dict[str, Any]:
            text = f"seed={body['seed']} {state.text}"
            finish, stop_reason = "length", None
            for s in body.get("stop") or []:
                if state.honor_stop and s in text:
                    text, finish, stop_reason = text[:text.index(s)], "stop", s
            words = text.split()
            if self.path == "/v1/completions":
                prompt_words = len(body["prompt"].split())
                choice = {"index": 0, "text": text, "finish_reason": finish,
                          "stop_reason": stop_reason}
                if body.get("logprobs") is not None:
                    choice["logprobs"] = {"token_logprobs": [-0.5] * len(words)}
            elif self.path == "/v1/chat/completions":
                prompt_words = sum(len(m["content"].split()) for m in body["messages"])
                choice = {"index": 0, "message": {"role": "assistant", "content": text},
                          "finish_reason": finish, "stop_reason": stop_reason}
                if body.get("logprobs"):
                    choice["logprobs"] = {"content": [{"token": w, "logprob": -0.25}
                                                      for w in words]}
            else:
                raise AssertionError(self.path)
            return {"id": "x", "object": "completion", "choices": [choice],
                    "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(words),
                              "total_tokens": prompt_words + len(words)}}

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, FakeState]]:
    state = FakeState()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


def _backend(url: str, **kw: Any) -> Any:
    extra = {"retry_backoff_s": 0.01, "max_backoff_s": 0.05}
    return load_backend(BackendConfig(backend="openai", base_url=url, extra=extra, **kw))


CHAT = [{"role": "user", "content": "What is 6 * 7?"}]
CONT = [*CHAT, {"role": "assistant", "content": "Let me think"}]


def test_endpoints_shapes_seeds_and_usage(server: tuple[str, FakeState]) -> None:
    url, state = server
    be = _backend(url)
    try:
        assert be.model_id == "fake-model"  # "default" asks the server's /models
        outs = be.generate(["Q: 6*7 =", CHAT, CONT], SamplingParams(n=3, temperature=0.7,
                                                                     max_tokens=9))
    finally:
        be.close()
    assert [len(o) for o in outs] == [3, 3, 3]
    posts = state.requests
    assert len(posts) == 9 and all(b["n"] == 1 and b["max_tokens"] == 9 for _, b, _ in posts)
    assert len({b["seed"] for _, b, _ in posts}) == 9  # one stream per completion
    assert all(b["model"] == "fake-model" for _, b, _ in posts)
    paths = sorted(p for p, _, _ in posts)
    assert paths.count("/v1/completions") == 3 and paths.count("/v1/chat/completions") == 6
    cont = [b for _, b, _ in posts if b.get("messages") == CONT]
    assert len(cont) == 3
    assert all(b["continue_final_message"] and not b["add_generation_prompt"] for b in cont)
    fresh = [b for _, b, _ in posts if b.get("messages") == CHAT]
    assert all("continue_final_message" not in b for b in fresh)
    c = outs[0][0]
    assert c.finish_reason == "length" and c.stop_reason is None
    assert c.prompt_tokens == 3 and c.completion_tokens == len(c.text.split())
    assert c.cumulative_logprob is None
    assert len({x.text for x in outs[1]}) == 3  # seeds differ, so do the fake texts


def test_greedy_sends_one_request_per_prompt(server: tuple[str, FakeState]) -> None:
    url, state = server
    be = _backend(url, model="m")
    try:
        outs = be.generate(["a", "b"], SamplingParams(n=4))
    finally:
        be.close()
    assert len(state.requests) == 2
    assert all(o[0] == o[3] for o in outs)


def test_stop_strings_from_server_and_local_cut(server: tuple[str, FakeState]) -> None:
    url, state = server
    be = _backend(url, model="m")
    try:
        [[c]] = be.generate(["q"], SamplingParams(stop=(" STOP",)))
        assert (c.finish_reason, c.stop_reason) == ("stop", " STOP")
        assert c.text.endswith(" the answer is 42")
        state.honor_stop = False  # a server that ignores `stop`: still cut here
        [[d]] = be.generate(["q"], SamplingParams(stop=("answer", "zzz")))
        assert d.text.endswith(" the ") and d.text.startswith("seed=")
        assert (d.finish_reason, d.stop_reason) == ("stop", "answer")
    finally:
        be.close()


def test_logprobs_summed_for_both_endpoints(server: tuple[str, FakeState]) -> None:
    url, _ = server
    be = _backend(url, model="m")
    try:
        [[a], [b]] = be.generate(["q", CHAT], SamplingParams(logprobs=True))
    finally:
        be.close()
    assert a.cumulative_logprob == pytest.approx(-0.5 * a.completion_tokens)
    assert b.cumulative_logprob == pytest.approx(-0.25 * b.completion_tokens)


def test_503_then_200_is_retried(server: tuple[str, FakeState]) -> None:
    url, state = server
    state.fail_with = [503, 502]
    be = _backend(url, model="m", max_retries=4)
    try:
        [[c]] = be.generate(["q"], SamplingParams())
    finally:
        be.close()
    assert len(state.requests) == 3 and c.text.startswith("seed=")


def test_400_is_not_retried(server: tuple[str, FakeState]) -> None:
    url, state = server
    state.fail_with = [400, 400, 400]
    be = _backend(url, model="m", max_retries=4)
    try:
        with pytest.raises(BackendError, match=r"HTTP 400.*not retried"):
            be.generate(["q"], SamplingParams())
    finally:
        be.close()
    assert len(state.requests) == 1


def test_persistent_5xx_gives_up_after_max_retries(server: tuple[str, FakeState]) -> None:
    url, state = server
    state.fail_with = [500] * 10
    be = _backend(url, model="m", max_retries=2)
    try:
        with pytest.raises(BackendError, match=r"HTTP 500.*gave up after 3 attempts"):
            be.generate(["q"], SamplingParams())
    finally:
        be.close()
    assert len(state.requests) == 3


def test_hanging_server_times_out_with_a_clear_error(server: tuple[str, FakeState]) -> None:
    url, state = server
    state.hang = True
    be = _backend(url, model="m", request_timeout_s=0.3, max_retries=1)
    t0 = time.monotonic()
    try:
        with pytest.raises(BackendError, match=r"timed out after 0\.3s.*gave up after 2"):
            be.generate(["q"], SamplingParams())
    finally:
        state.release.set()
        be.close()
    assert time.monotonic() - t0 < 5
    assert len(state.requests) == 2


def test_unreachable_server_raises(server: tuple[str, FakeState]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    be = _backend(f"http://127.0.0.1:{port}/v1", model="m", max_retries=1)
    try:
        with pytest.raises(BackendError, match="ConnectError.*gave up after 2"):
            be.generate(["q"], SamplingParams())
    finally:
        be.close()
    with pytest.raises(BackendError, match="ConnectError"):  # model "default" asks /models
        _backend(f"http://127.0.0.1:{port}/v1", max_retries=0)


def test_concurrency_is_bounded(server: tuple[str, FakeState]) -> None:
    url, state = server
    state.delay_s = 0.05
    be = _backend(url, model="m", max_concurrency=3)
    try:
        outs = be.generate([f"q{i}" for i in range(12)], SamplingParams())
    finally:
        be.close()
    assert len(outs) == 12 and len(state.requests) == 12
    assert 2 <= state.max_inflight <= 3


def test_api_key_header_from_env(server: tuple[str, FakeState],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url, state = server
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    be = _backend(url, model="m", api_key_env="FAKE_KEY")
    try:
        be.generate(["q"], SamplingParams())
    finally:
        be.close()
    headers = {k.lower(): v for k, v in state.requests[0][2].items()}
    assert headers["authorization"] == "Bearer sk-test"


def test_local_tokenizer_renders_chats_for_the_completions_endpoint(
        server: tuple[str, FakeState]) -> None:
    from tests.verimath.tiny_model import tiny_model_dir

    url, state = server
    from verimath.backends import load_backend as lb

    be = lb(BackendConfig(backend="openai", base_url=url, model="m",
                          extra={"tokenizer": str(tiny_model_dir())}))
    try:
        assert be.render(CONT).endswith("<|im_start|>assistant\nLet me think")
        be.generate([CONT], SamplingParams())
    finally:
        be.close()
    path, body, _ = state.requests[0]
    assert path == "/v1/completions" and body["prompt"] == be.render(CONT)
