"""Benchmark: generation throughput (completion tokens per second) of each available backend.

Workload: the first ``--prompts`` GSM8K-style questions as chat prompts to the embedded
SmolLM2-135M-Instruct, greedy, ``--max-tokens`` new tokens each, no stop strings (so every row
runs to the same length and the token counts are comparable). Measured in one run:

* ``transformers batch=1``  - the baseline: one row per forward batch;
* ``transformers batch=B``  - all prompts in one left-padded batch;
* ``transformers sampled``  - n=4 samples per prompt at temperature 0.7 (4x the rows), batch B;
* ``openai -> transformers``- (``--openai``) the OpenAI HTTP client against a local server that
  wraps a batch-1 transformers backend: measures the HTTP path's overhead, not a faster engine;
* ``vllm``                  - when ``vllm`` is importable.

Each line prints tokens/s (best of ``--repeats`` runs) and the ratio to the batch-1 baseline of
the same run; the load average is printed too, since other work on the machine skews CPU
timings. Model load times (first conversion of the GGUF if the cache is empty, then a cached
load) are printed as well.

Usage: ``python benchmarks/generation.py [--prompts 8] [--max-tokens 48] [--batch 8] [--openai]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money "
    "she needs. Her parents decided to give her $15 for that purpose, and her grandparents twice "
    "as much as her parents. How much more money does Betty need to buy the wallet?",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he "
    "write a year?",
    "Albert is wondering how much pizza he can eat in one day. He buys 2 large pizzas and 2 small "
    "pizzas. A large pizza has 16 slices and a small pizza has 8 slices. If he eats it all, how "
    "many pieces does he eat that day?",
    "Ken created a care package to send to his brother. He placed a box on a scale, and then he "
    "poured into the box enough jelly beans to bring the weight to 2 pounds. How much did it "
    "weigh at the end?",
    "Alexis is applying for a new job and bought a new set of business clothes to wear to the "
    "interview. She went to a department store with a budget of $200. How much did she pay?",
    "Tina makes $18.00 an hour. If she works more than 8 hours per shift, she is eligible for "
    "overtime. If she works 10 hours every day for 5 days, how much money does she make?",
]


def chats(k: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}] for i in range(k)]


def measure(jobs: list[tuple[str, Any, list, Any]], repeats: int) -> list[dict[str, Any]]:
    """Time every job ``repeats`` times, round-robin so all see the same machine load; keep the
    best run of each (the least disturbed by other work)."""
    for _, backend, prompts, params in jobs:  # warm-up: first-call overheads
        backend.generate(prompts[:1], type(params)(max_tokens=2))
    best = [float("inf")] * len(jobs)
    tokens = [0] * len(jobs)
    completions = [0] * len(jobs)
    for r in range(repeats):
        for k, (label, backend, prompts, params) in enumerate(jobs):
            t0 = time.perf_counter()
            outs = backend.generate(prompts, params)
            wall = time.perf_counter() - t0
            best[k] = min(best[k], wall)
            tokens[k] = sum(c.completion_tokens for o in outs for c in o)
            completions[k] = sum(len(o) for o in outs)
            print(f"  run {r + 1}: {label}: {tokens[k]} tokens in {wall:.1f}s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    return [{"backend": label, "completions": completions[k], "tokens": tokens[k],
             "wall_s": round(best[k], 2), "tok_per_s": round(tokens[k] / best[k], 1)}
            for k, (label, *_) in enumerate(jobs)]


def openai_over_transformers(backend: Any) -> tuple[str, Any]:
    """A minimal OpenAI-compatible ``/v1/chat/completions`` server wrapping ``backend``."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from verimath.backends import SamplingParams

    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            params = SamplingParams(temperature=body["temperature"], top_p=body["top_p"],
                                    max_tokens=body["max_tokens"], seed=body["seed"],
                                    stop=tuple(body.get("stop") or ()))
            with lock:
                [[c]] = backend.generate([body["messages"]], params)
            data = json.dumps({"choices": [{"index": 0, "finish_reason": c.finish_reason,
                                            "message": {"role": "assistant", "content": c.text}}],
                               "usage": {"prompt_tokens": c.prompt_tokens,
                                         "completion_tokens": c.completion_tokens}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1", httpd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per line; best is kept")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--openai", action="store_true", help="also time the HTTP client path")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0: torch's default, one per core)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from verimath.backends import BackendConfig, SamplingParams, load_backend
    from verimath.backends.default_model import DEFAULT_NAME, cache_dir

    cached = (cache_dir() / "models" / DEFAULT_NAME / "source.json").is_file()
    t0 = time.perf_counter()
    be1 = load_backend(BackendConfig(model="default", device=args.device, batch_size=1))
    print(f"load default model: {time.perf_counter() - t0:.1f}s "
          f"({'cached safetensors' if cached else 'first use: GGUF conversion included'})")
    t0 = time.perf_counter()
    beb = load_backend(BackendConfig(model="default", device=args.device,
                                     batch_size=args.batch))
    print(f"load default model again: {time.perf_counter() - t0:.1f}s (cached)")

    import torch

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}", flush=True)
    prompts = chats(args.prompts)
    greedy = SamplingParams(max_tokens=args.max_tokens)
    sampled = SamplingParams(n=4, temperature=0.7, max_tokens=args.max_tokens)
    jobs: list[tuple[str, Any, list, Any]] = [
        ("transformers batch=1", be1, prompts, greedy),
        (f"transformers batch={args.batch}", beb, prompts, greedy),
        (f"transformers sampled n=4 batch={args.batch}", beb, prompts, sampled),
    ]
    httpd = client = None
    if args.openai:
        url, httpd = openai_over_transformers(be1)
        client = load_backend(BackendConfig(backend="openai", base_url=url, model="smollm2",
                                            max_concurrency=args.batch))
        jobs.append(("openai -> transformers batch=1", client, prompts, greedy))
    try:
        rows = measure(jobs, args.repeats)
    finally:
        if client is not None:
            client.close()
            httpd.shutdown()
        be1.close()
        beb.close()
    if importlib.util.find_spec("vllm") is not None:
        bev = load_backend(BackendConfig(backend="vllm", model="default", device=args.device))
        try:
            rows += measure([("vllm", bev, prompts, greedy)], args.repeats)
        finally:
            bev.close()
    else:
        print("vllm: not installed, skipped (make install-vllm)")

    print(f"load average after: {os.getloadavg()[0]:.1f}")
    base = rows[0]["tok_per_s"]
    print(f"\n{'backend':40s} {'compl':>5s} {'tokens':>6s} {'wall_s':>7s} {'tok/s':>7s} "
          f"{'x batch=1':>9s}")
    for r in rows:
        r["ratio_vs_batch1"] = round(r["tok_per_s"] / base, 2)
        print(f"{r['backend']:40s} {r['completions']:5d} {r['tokens']:6d} {r['wall_s']:7.2f} "
              f"{r['tok_per_s']:7.1f} {r['ratio_vs_batch1']:9.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
