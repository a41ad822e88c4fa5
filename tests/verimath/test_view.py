"""`verimath view`: reports of real job folders, checked as data and in headless Chromium.

The run folders come from the real jobs (eval with the real sandbox and grader, prove with the
scripted Lean checker, a reference-mode datagen) driven by scripted policies; every job writes
its ``report.html`` through its ``report: true`` hook. Browser tests open the files in Debian's
``/usr/bin/chromium`` through Playwright (installed by ``make install``) and skip only when
that binary is absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from verimath.cli import main as cli
from verimath.config import load_config
from verimath.reasoning.evaluation import EvalConfig
from verimath.reasoning.evaluation import main as run_eval
from verimath.testing import ScriptedBackend, question_of
from verimath.view import build_report, load_run
from verimath.view.compare import compare
from verimath.view.html import embed_json
from verimath.view.load import RunFolderError

CHROMIUM = Path("/usr/bin/chromium")
#: what an untrusted completion tries: close the data element, run script, inject markup
EVIL = "</script><script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
PROBLEMS = [("What is 2+3?", "5"), ("What is 4+4?", "8"), ("What is 6+1?", "7"),
            ("What is 9+9?", "18"), ("What is 10+1?", "11")]


def _policy(answers: dict[str, str | None]) -> Any:
    """A PoT 'model' printing ``answers[question]`` (None: no code, so no answer)."""
    def policy(prompt: Any, j: int, params: Any) -> str:
        q = question_of(prompt)
        value = answers[q]
        if value is None:
            return "I am not sure."
        evil = q.startswith("What is 10")
        prose = f"Compute it. {EVIL}\n" if evil else "Compute it.\n"
        return f"{prose}```python\n# {EVIL if evil else 'sum'}\nprint({value})\n```"
    return policy


def _eval(tmp: Path, name: str, answers: dict[str, str | None], monkeypatch: Any) -> Path:
    import verimath.reasoning.sandbox as sbmod
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    data = tmp / "in.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in PROBLEMS))
    real_run = sbmod.Sandbox.run

    def run(self: Any, code: str, **kw: Any) -> Any:  # 9+9: the interpreter dies (infra)
        if "print(18)" in code:
            return ExecResult(ExecStatus.SANDBOX_ERROR, "", "worker died", None, 0.0, 0.0, "test")
        return real_run(self, code, **kw)

    monkeypatch.setattr(sbmod.Sandbox, "run", run)
    cfg = load_config(EvalConfig, None, [f"benchmark={data}", f"out={tmp / name}", "n=2",
                                         "k=[1,2]", "temperature=0.7", "rollout.strategy=pot",
                                         "infra_retries=1", "sandbox.workers=1"])
    run_eval(cfg, progress=False, backend=ScriptedBackend(_policy(answers)))
    return tmp / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real eval runs of one set: 4+4 goes right->wrong, 6+1 wrong->right; 9+9 is unjudged
    (provisional: its sandbox died), 10+1 carries the untrusted text."""
    tmp = tmp_path_factory.mktemp("view")
    mp = pytest.MonkeyPatch()
    try:
        a = _eval(tmp, "a", {"What is 2+3?": "5", "What is 4+4?": "8", "What is 6+1?": "6",
                             "What is 9+9?": "18", "What is 10+1?": "12"}, mp)
        b = _eval(tmp, "b", {"What is 2+3?": "5", "What is 4+4?": "9", "What is 6+1?": "7",
                             "What is 9+9?": "18", "What is 10+1?": None}, mp)
    finally:
        mp.undo()
    return {"a": a, "b": b, "tmp": tmp}


# ---------------------------------------------------------------------------------- data


def test_embedded_json_cannot_close_its_element_and_round_trips() -> None:
    obj = {"t": EVIL + " & <!-- x", "nan": float("nan")}
    text = embed_json(obj)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"t": obj["t"], "nan": None}


def test_eval_job_writes_its_report_and_the_loader_reads_every_attempt(runs) -> None:
    html = (runs["a"] / "report.html").read_text()  # the job's report: true hook
    assert "</script><script>window.__pwned" not in html
    d = load_run(runs["a"])
    by_q = {p["q"]: p for p in d["problems"]}
    assert [p["q"] for p in d["problems"]][:4] == [q for q, _ in PROBLEMS if q != "What is 9+9?"]
    assert [a["s"] for a in by_q["What is 2+3?"]["at"]] == ["correct", "correct"]
    assert [a["c"] for a in by_q["What is 6+1?"]["at"]] == [False, False]
    unj = by_q["What is 9+9?"]
    assert unj["pv"] is True and all(a["c"] is None for a in unj["at"])  # retries.jsonl
    assert d["summary"]["n_problems"] == 5 and d["run"]["grader_version"]
    # the few-shot prompt is stored once and shared by every problem
    prompts = [p["m"] for p in d["problems"]]
    assert len(d["M"]) < sum(len(m) for m in prompts) and prompts[0][:-1] == prompts[1][:-1]


def test_comparison_pairs_problems_and_finds_the_flips(runs) -> None:
    c = compare(load_run(runs["a"]), load_run(runs["b"]), n_boot=2000)
    flips = {p["q"]: p["fl"] for p in c["problems"] if p["fl"]}
    assert flips == {"What is 4+4?": "right->wrong", "What is 6+1?": "wrong->right"}
    p = c["paired"]
    # judged in both: 2+3 (0), 4+4 (-1), 6+1 (+1), 10+1 (A wrong, B no answer: 0)
    assert p["problems"] == 4 and p["diff"] == 0.0 and p["left_out"] == 1
    assert p["ci95"][0] < 0 < p["ci95"][1]
    unflipped = next(x for x in c["problems"] if x["q"] == "What is 2+3?")
    assert "at" not in unflipped["A"] and "at" in next(
        x for x in c["problems"] if x["q"] == "What is 4+4?")["B"]


def test_cli_view_regenerates_and_compares(runs, capsys) -> None:
    (runs["a"] / "report.html").unlink()
    assert cli(["view", str(runs["a"])]) == 0
    assert (runs["a"] / "report.html").exists() and "report (eval" in capsys.readouterr().out
    out = runs["tmp"] / "cmp.html"
    assert cli(["view", str(runs["a"]), str(runs["b"]), "--out", str(out)]) == 0
    assert out.exists() and str(out) in capsys.readouterr().out


def test_cli_view_refuses_what_is_not_a_run(tmp_path, runs, capsys) -> None:
    assert cli(["view", str(tmp_path)]) == 2
    assert "not a verimath run folder" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="manifest.json: not valid JSON"):
        load_run(tmp_path)
    dg = runs["tmp"] / "fake_datagen"
    dg.mkdir(exist_ok=True)
    (dg / "funnel.json").write_text('{"stages": []}')
    assert cli(["view", str(runs["a"]), str(dg)]) == 2
    assert "can compare two eval runs or two prove runs" in capsys.readouterr().err


def test_iterate_report_links_each_round_and_writes_missing_sub_reports(runs) -> None:
    it = runs["tmp"] / "iterate"
    for r, src in ((0, runs["a"]), (1, runs["b"])):
        shutil.copytree(src, it / f"round_{r}" / "eval", dirs_exist_ok=True)
        (it / f"round_{r}" / "eval" / "report.html").unlink()
    rows = [{"round": r, "model": m, "accuracy": acc, "accuracy_ci95": [0.1, 0.9],
             "n_problems": 5, "n_judged": 4, "gain_vs_base": g, "verified_yield": None,
             "data": None} for r, m, acc, g in (
        (0, "base", 0.375, None),
        (1, "round_1/checkpoint/final", 0.375, {"gain": 0.0, "ci95": [-0.25, 0.25],
                                                "problems": 4}))]
    (it / "rounds.json").write_text(json.dumps({"rounds": rows}))
    (it / "manifest.json").write_text(json.dumps({"job": "iterate", "config": {}}))
    rep = build_report([it])
    assert rep.kind == "iterate"
    d = load_run(it)
    assert d["links"]["rounds"] == {"0": {"eval": "round_0/eval"}, "1": {"eval": "round_1/eval"}}
    assert (it / "round_0" / "eval" / "report.html").exists()


# ---------------------------------------------------------------------------------- browser

ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-extensions"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One headless Chromium for the module (a fresh profile; the network stays unused)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (make install installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900})
        yield ctx
        ctx.close()


class Page:
    """A report opened in the browser, collecting console errors and page errors."""

    def __init__(self, ctx: Any, path: Path) -> None:
        self.errors: list[str] = []
        self.page = ctx.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready='1']", timeout=20000)

    def ids(self) -> list[str]:
        return self.page.eval_on_selector_all("#vm-rows tr.row", "rs => rs.map(r => r.dataset.id)")

    def filter(self, value: str) -> list[str]:
        self.page.select_option("#vm-filter", value)
        return self.ids()


def _ids(run: Path, pred: Any) -> set[str]:
    return {p["id"] for p in load_run(run)["problems"] if pred(p)}


def test_eval_report_filters_search_sort_and_has_no_errors(runs, browser, tmp_path) -> None:
    build_report([runs["a"]])
    pg = Page(browser, runs["a"] / "report.html")
    page = pg.page
    assert len(pg.ids()) == 5 and page.text_content("#vm-count") == "5 of 5 problems"
    assert "accuracy" in page.text_content("#vm-cards")
    wrong = _ids(runs["a"], lambda p: any(a["s"] == "wrong" for a in p["at"]))
    assert set(pg.filter("wrong")) == wrong and len(wrong) == 2
    assert set(pg.filter("correct")) == _ids(runs["a"], lambda p: p["at"][0]["c"])
    unjudged = pg.filter("unjudged")
    assert unjudged == list(_ids(runs["a"], lambda p: p["pv"]))
    assert set(pg.filter("provisional")) == set(unjudged)
    pg.filter("all")
    page.fill("#vm-search", "6+1")
    assert len(pg.ids()) == 1
    page.fill("#vm-search", "")
    page.select_option("#vm-sort", "acc_desc")
    first = pg.ids()[0]
    assert first in _ids(runs["a"], lambda p: all(a["c"] for a in p["at"]))
    page.click(f"#vm-rows tr.row[data-id='{first}']")
    detail = page.locator("#vm-rows tr.detail")
    assert detail.locator(".attempt").count() == 2
    assert detail.locator("pre.code .tok-kw").first.text_content() == "print"
    assert detail.locator("pre.tool").first.text_content() == "5"  # the sandbox's output
    page.screenshot(path=str(tmp_path / "eval_report.png"), full_page=True)
    assert (tmp_path / "eval_report.png").stat().st_size > 10_000
    assert pg.errors == []


def test_untrusted_completion_is_inert_text(runs, browser) -> None:
    for compress in (False, True):  # plain JSON and the gzip + base64 embedding
        out = runs["tmp"] / f"evil_{compress}.html"
        build_report([runs["a"]], out, compress=compress)
        pg = Page(browser, out)
        pg.page.fill("#vm-search", "10+1")
        [pid] = pg.ids()
        pg.page.click(f"#vm-rows tr.row[data-id='{pid}']")
        detail = pg.page.locator("#vm-rows tr.detail")
        assert EVIL in detail.inner_text()  # shown, as text
        assert pg.page.evaluate("window.__pwned") is None
        assert pg.page.locator("img").count() == 0 and pg.page.locator("script").count() == 2
        assert pg.errors == []


def test_comparison_report_lists_the_flipped_problems(runs, browser, tmp_path) -> None:
    rep = build_report([runs["a"], runs["b"]], tmp_path / "compare.html")
    pg = Page(browser, rep.path)
    page = pg.page
    flipped = {p["id"]: p["fl"] for p in compare(load_run(runs["a"]), load_run(runs["b"]),
                                                 n_boot=100)["problems"] if p["fl"]}
    assert set(pg.ids()) == set(flipped) and len(flipped) == 2  # the default filter: flipped
    assert pg.filter("lost") == [k for k, v in flipped.items() if v == "right->wrong"]
    assert pg.filter("gained") == [k for k, v in flipped.items() if v == "wrong->right"]
    assert len(pg.filter("all")) == 5
    assert "problems judged in both" in page.text_content("#vm-paired")
    pg.filter("flipped")
    page.click("#vm-rows tr.row >> nth=0")
    assert page.locator(".side-a .attempt").count() == 2
    assert page.locator(".side-b .attempt").count() == 2
    page.screenshot(path=str(tmp_path / "compare_report.png"), full_page=True)
    assert pg.errors == []


def test_datagen_report_shows_the_funnel_drops_and_rows(browser, tmp_path, shared_data) -> None:
    from verimath.datagen.config import DatagenConfig
    from verimath.datagen.pipeline import main as datagen

    cfg = load_config(DatagenConfig, str(Path(__file__).parents[2] / "configs" / "datagen"
                                         / "gsm8k_reference.yaml"),
                      [f"out={tmp_path / 'dg'}", "limit=8",
                       f"inputs=[\"{shared_data / 'gsm8k' / 'train.jsonl'}\"]"])
    datagen(cfg)
    out = tmp_path / "dg"
    funnel = json.loads((out / "funnel.json").read_text())["stages"]
    n_rows = len((out / "data.jsonl").read_text().splitlines())
    reasons = {(r["stage"], r["reason"].split(":")[0]) for r in
               map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    pg = Page(browser, out / "report.html")
    page = pg.page
    assert page.locator("#vm-funnel tbody tr").count() == len(funnel)
    assert page.locator("#vm-drops details").count() == len(reasons)
    assert page.text_content("#vm-count") == f"{n_rows} of {n_rows} rows"
    page.click("#vm-rows tr.row >> nth=0")
    assert page.locator("#vm-rows tr.detail pre.code").count() >= 1
    page.screenshot(path=str(tmp_path / "datagen_report.png"), full_page=True)
    assert pg.errors == []


def test_a_damaged_record_line_is_left_out_and_named(runs, tmp_path) -> None:
    run = tmp_path / "damaged"
    shutil.copytree(runs["a"], run)
    lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
    (run / "records.jsonl").write_text(lines[0] + '{"id": "cut sho' + "\n" + "".join(lines[1:]))
    d = load_run(run)
    assert len(d["problems"]) == 5 and len(d["damaged"]) == 1
    assert "records.jsonl:2" in d["damaged"][0]


def test_prove_report_shows_statements_proofs_and_audit(browser, tmp_path, shared_data) -> None:
    from verimath.prover.evaluation import ProveConfig
    from verimath.prover.evaluation import main as prove
    from verimath.prover.scripted import ScriptedChecker

    names = [json.loads(x)["name"] for x in
             (shared_data / "minif2f" / "minif2f.jsonl").open()][:3]

    def policy(prompt: Any, j: int, params: Any) -> str:  # solves the first problem only
        text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
        return "  nlinarith [h₂]\n" if f"theorem {names[0]} " in text else "  simp\n"

    out = tmp_path / "prove"
    prove(ProveConfig(benchmark="minif2f", split="valid", limit=3, n=2, k=(1, 2), out=str(out)),
          progress=False, backend=ScriptedBackend(policy),
          checker=ScriptedChecker({names[0]: ["by\n  nlinarith [h₂]"]}))
    pg = Page(browser, out / "report.html")
    page = pg.page
    assert pg.ids() == names
    assert "pass@1" in page.text_content("#vm-cards") and "solved" in page.text_content("#vm-cards")
    assert pg.filter("correct") == [names[0]]
    assert set(pg.filter("wrong")) == set(names[1:])
    pg.filter("all")
    page.click(f"#vm-rows tr.row[data-id='{names[0]}']")
    detail = page.locator("#vm-rows tr.detail")
    assert detail.locator(".attempt").count() == 2
    assert detail.locator(".attempt[data-status='correct']").count() == 2
    assert f"theorem {names[0]}" in detail.locator("pre.code").first.inner_text()
    assert "nlinarith" in detail.inner_text()
    page.screenshot(path=str(tmp_path / "prove_report.png"), full_page=True)
    assert pg.errors == []


def test_iterate_report_shows_training_pairs_and_links_rounds(runs, browser) -> None:
    it = runs["tmp"] / "iterate_browser"
    for r, src in ((0, runs["a"]), (1, runs["b"])):
        shutil.copytree(src, it / f"round_{r}" / "eval", dirs_exist_ok=True)
    base = {"model": "base", "accuracy": 0.375, "accuracy_ci95": [0.1, 0.7], "n_problems": 5,
            "n_judged": 4, "gain_vs_base": None, "verified_yield": None, "data": None}
    rows = [{"round": 0, **base},
            {**base, "round": 1, "model": "round_1/dpo/final", "accuracy": 0.5,
             "gain_vs_base": {"gain": 0.125, "ci95": [-0.25, 0.5], "problems": 4},
             "train": ["sft", "dpo"], "pairs": 55, "reward_margin": 0.115,
             "reward_accuracy": 1.0, "verified": 1, "attempts": 78, "verified_yield": 1 / 78,
             "data": {"seed": 614, "generated": 1, "train": 615}}]
    (it / "rounds.json").write_text(json.dumps({"rounds": rows}))
    (it / "manifest.json").write_text(json.dumps({"job": "iterate", "config": {}}))
    build_report([it])
    pg = Page(browser, it / "report.html")
    page = pg.page
    cells = page.eval_on_selector_all(
        "#vm-rounds tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
    head = page.eval_on_selector_all("#vm-rounds thead th", "hs => hs.map(h => h.innerText)")
    assert len(cells) == 2
    r1 = dict(zip(head, cells[1], strict=True))
    assert r1["train"] == "sft+dpo" and r1["pairs"] == "55"
    assert r1["reward margin (accuracy)"] == "+0.115 (100.0%)"
    assert r1["SFT rows seed+own"] == "614+1 = 615" and r1["verified yield"].startswith("1/78")
    assert dict(zip(head, cells[0], strict=True))["pairs"] == "-"
    page.click("#vm-rounds tbody tr >> nth=1 >> text=eval report")
    page.wait_for_selector("body[data-ready='1']", timeout=20000)
    assert page.url.endswith("round_1/eval/report.html") and len(pg.ids()) == 5
    assert pg.errors == []
