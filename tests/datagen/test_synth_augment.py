"""Verified augmentation: new golds always come from execution; ambiguous constants dropped."""

from __future__ import annotations

import json
from fractions import Fraction
from types import SimpleNamespace

import pytest

from verimath.datagen.augment import FOBAR, AugmentStage, Mutable, backward_program
from verimath.datagen.config import (
    AugmentConfig,
    DatagenConfig,
    DecontamConfig,
    ExportConfig,
    SynthConfig,
)
from verimath.datagen.refprog import (
    RefProgram,
    literal_of,
    parse_number,
    parse_reference,
    pot_program,
    question_numbers,
    steps_program,
)
from verimath.datagen.stages import as_items
from verimath.datagen.synth import SharedTools, SynthStage
from verimath.datasets import load_problems
from verimath.reasoning.grading import Grader, GraderConfig
from verimath.reasoning.sandbox import Sandbox, SandboxConfig
from verimath.records import Problem, content_hash

N_REAL = 40


@pytest.fixture(scope="module")
def comps():
    sb = Sandbox(SandboxConfig(timeout_s=5.0, workers=2))
    gr = Grader(GraderConfig(workers=1))
    yield SimpleNamespace(sandbox=sb, grader=gr)
    gr.close()
    sb.close()


def _cfg(**augment) -> DatagenConfig:
    return DatagenConfig(mode="reference", decontam=DecontamConfig(enabled=False),
                         synth=SynthConfig(augment=AugmentConfig(**augment)))


def _augment(comps, problems: list[Problem], **augment):
    """Synthesize then augment; returns (verified program items, augment outcomes)."""
    cfg = _cfg(**augment)
    tools = SharedTools(cfg, comps)
    outs = SynthStage(cfg, tools).process(as_items(problems))
    progs = [it for o in outs for it in o.kept]
    return progs, AugmentStage(cfg, tools).process(progs)


@pytest.fixture(scope="module")
def real(comps, shared_data):
    res = load_problems(str(shared_data / "gsm8k" / "train.jsonl"), limit=N_REAL)
    progs, outs = _augment(comps, res.problems, numeric_variants=2, backward=1)
    return {it["problem"]["id"]: it for it in progs}, outs


def _printed(res) -> Fraction:
    assert res.ok, res.stderr
    v = parse_number(res.stdout.strip().splitlines()[-1])
    assert v is not None
    return v


def test_numeric_variants_gold_is_what_the_program_prints(real, comps):
    parents, outs = real
    new = [it for o in outs for it in o.kept if "/num" in it["problem"]["id"]]
    assert len(new) >= N_REAL // 2, f"only {len(new)} numeric variants"
    codes = [it["rows"][0]["provenance"]["tool_calls"][0]["code"] for it in new]
    for it, res in zip(new, comps.sandbox.run_many(codes), strict=True):
        row, p = it["rows"][0], it["problem"]
        assert row["verified_by"] == "execution"
        assert row["provenance"]["source_method"] == "numeric_variation"
        assert abs(_printed(res) - parse_number(p["answer"])) < 1e-9  # an independent re-run
        parent = parents[p["meta"]["parent_id"]]["problem"]
        # the question changed exactly at the changed constants, in order, nowhere else
        old = [q.text for q in question_numbers(parent["informal"])]
        now = [q.text for q in question_numbers(p["informal"])]
        assert len(old) == len(now)
        diff = [(a, b) for a, b in zip(old, now, strict=True) if a != b]
        assert sorted(diff) == sorted(tuple(v) for v in p["meta"]["changes"].values())
        assert diff, "a variant must change the question"


def test_numeric_variants_keep_counts_whole_and_non_negative(real, comps):
    parents, outs = real
    checks = []
    for it in (it for o in outs for it in o.kept if "/num" in it["problem"]["id"]):
        prog = RefProgram.from_dict(parents[it["problem"]["meta"]["parent_id"]]["program"])
        values = {name: literal_of(parse_number(new), old)
                  for name, (old, new) in it["problem"]["meta"]["changes"].items()}
        checks.append((prog, steps_program(prog, values)))
    for (prog, _), res in zip(checks, comps.sandbox.run_many([c for _, c in checks]),
                              strict=True):
        assert res.ok
        for step, line in zip(prog.steps, res.stdout.split(), strict=True):
            v = parse_number(line)
            if step.claimed is not None and step.claimed.denominator == 1:
                assert abs(v - round(v)) < 1e-9, (step.name, line)
            if step.claimed is not None and step.claimed >= 0:
                assert v >= 0


def test_backward_questions_are_verified_by_the_forward_program(real, comps):
    parents, outs = real
    new = [it for o in outs for it in o.kept if "/bwd" in it["problem"]["id"]]
    assert len(new) >= N_REAL // 2, f"only {len(new)} backward questions"
    fwd, own = [], []
    for it in new:
        p = it["problem"]
        parent = parents[p["meta"]["parent_id"]]
        prog = RefProgram.from_dict(parent["program"])
        assert p["informal"].endswith(FOBAR.format(answer=parent["problem"]["answer"]))
        assert p["informal"].count("X") == 1 + FOBAR.count("X")
        fwd.append(pot_program(prog, {p["meta"]["masked"]: p["answer"]}))
        own.append(it["rows"][0]["provenance"]["tool_calls"][0]["code"])
    for it, f, o in zip(new, comps.sandbox.run_many(fwd), comps.sandbox.run_many(own),
                        strict=True):
        p = it["problem"]
        assert abs(_printed(f) - parse_number(p["meta"]["parent_answer"])) < 1e-6
        assert abs(_printed(o) - parse_number(p["answer"])) < 1e-6
        assert it["rows"][0]["provenance"]["source_method"] == "backward"


def _p(question: str, solution: str, gold: str) -> Problem:
    return Problem(id="h" + content_hash(question), source="handmade",
                   informal=question, answer=gold, meta={"solution": solution})


AMBIGUOUS = [  # (question, solution, gold, reason): nothing may be changed safely
    ("Tom has 5 red pens and 5 blue pens. How many pens does he have?",
     "5+5=<<5+5=10>>10\n#### 10", "10", "ambiguous_constant"),  # the constant appears twice
    ("A box holds 6 pens. Sam has 2 boxes and 12 pencils. How many items does he have?",
     "6*2=<<6*2=12>>12 pens\n12+12=<<12+12=24>>24\n#### 24", "24",
     "ambiguous_constant"),  # the question's 12 is also a reused step result
    ("Anna has 3 cats and three dogs. How many pets does she have?",
     "3+3=<<3+3=6>>6\n#### 6", "6", "ambiguous_constant"),  # also written as a word
    ("Sam has 200 dollars and spends 16. Then he pays 143. How much is left?",
     "200 - 16 = 184.\n184-143=<<184-143=41>>41\n#### 41", "41",
     "unexplained_literal"),  # 184 was computed outside the annotations
]


@pytest.mark.parametrize("question,solution,gold,reason", AMBIGUOUS)
def test_ambiguous_constants_are_dropped(comps, question, solution, gold, reason):
    progs, outs = _augment(comps, [_p(question, solution, gold)])
    assert len(progs) == 1, "the program itself verifies"
    assert not outs[0].kept
    assert outs[0].rejected[0]["reason"].split(":")[0] == reason


def test_only_the_unambiguous_constant_changes(comps):
    q = "Tom has 5 red pens and 5 blue pens. He buys 7 more pens. How many pens does he have?"
    progs, outs = _augment(comps, [_p(q, "5+5=<<5+5=10>>10\n10+7=<<10+7=17>>17\n#### 17", "17")],
                           numeric_variants=3, backward=1)
    new = outs[0].kept
    assert {it["problem"]["id"].rsplit("/", 1)[1] for it in new} == {"num0", "num1", "num2",
                                                                     "bwd0"}
    for it in new:
        p = it["problem"]
        assert p["informal"].count("5 ") == 2  # the repeated 5 is never touched
        if "/num" in p["id"]:
            (old, now), = p["meta"]["changes"].values()
            assert old == "7" and p["answer"] == str(10 + int(now))
        else:
            assert p["answer"] == "7" and "buys X more" in p["informal"]


def _check(comps, question: str, solution: str, gold: str, changes: dict[str, str]):
    """``_numeric_check`` of the program with the inputs written ``old`` changed to ``new``."""
    prog = parse_reference(question, solution, gold)
    values = {i.name: changes[i.literal] for i in prog.inputs if i.literal in changes}
    assert len(values) == len(changes)
    res, steps = comps.sandbox.run_many([pot_program(prog, values), steps_program(prog, values)])
    new = {k: parse_number(v) for k, v in values.items()}
    return AugmentStage._numeric_check(prog, new, steps) or AugmentStage._printed_check(res, steps)


NATALIA = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many "
           "clips in May. How many clips did Natalia sell altogether in April and May?",
           "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
           "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
           "72")
APPLES = ("Tom has 10 apples and eats 4 of them. How many apples are left?",
          "10-4=<<10-4=6>>6\n#### 6", "6")


@pytest.mark.parametrize("problem,values,reason", [
    (NATALIA, {"48": "47"}, "non_integer_count"),  # half of 47 clips
    (APPLES, {"4": "15"}, "negative_value"),  # -5 apples left
    (NATALIA, {"48": "50"}, None),
    (APPLES, {"4": "9"}, None),
    (APPLES, {"4": "9", "10": "12"}, None),
])
def test_draw_invariants(comps, problem, values, reason):
    got = _check(comps, *problem, values)
    assert (got.split(":")[0] if got else None) == reason


def test_backward_with_two_solutions_is_dropped(comps):
    q = "A square garden has sides of 5 meters. What is its area in square meters?"
    progs, outs = _augment(comps, [_p(q, "5*5=<<5*5=25>>25\n#### 25", "25")], backward=1)
    reasons = [r["reason"].split(":")[0] for r in outs[0].rejected]
    assert "not_unique" in reasons  # x*x = 25 has the roots -5 and 5
    assert all("/bwd" not in it["problem"]["id"] for it in outs[0].kept)
    prog = RefProgram.from_dict(progs[0]["program"])
    assert "solve(Eq(" in backward_program(prog, prog.inputs[0].name, "25")


def test_mutable_percent_stays_a_percent():
    from verimath.datagen.augment import draw_value

    m = Mutable("rate", Fraction(90), "90", 0, 2, "90", percent=True)
    import random

    rng = random.Random(0)
    assert all(0 < draw_value(m, rng, set()) <= 100 for _ in range(50))


def test_planted_test_overlap_in_an_augmentation_is_decontaminated(comps, shared_data, tmp_path):
    """Augmented problems go through dedup and decontamination too (counted in the funnel).

    The plant: a GSM8K-test copy that also holds the text of one numeric variant of a short
    train-style problem (shorter than 13 words, so only the whole text matches: the parent,
    with its other numbers, stays clean and is kept).
    """
    from verimath.datagen.pipeline import Components, main

    inp = tmp_path / "train.jsonl"
    lines = (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines()[:10]
    short = {"question": "Tom has 10 apples and eats 4. How many are left?",
             "answer": "10-4=<<10-4=6>>6\n#### 6"}
    inp.write_text("\n".join([*lines, json.dumps(short)]) + "\n")
    test = shared_data / "gsm8k" / "test.jsonl"

    def run(out, bench):
        cfg = DatagenConfig(mode="reference", inputs=(str(inp),), out=str(out),
                            decontam=DecontamConfig(benchmarks=(str(bench),)),
                            synth=SynthConfig(augment=AugmentConfig(numeric_variants=1,
                                                                    backward=1)),
                            export=ExportConfig(formats=("jsonl",)))
        return main(cfg, components=Components(sandbox=comps.sandbox, grader=comps.grader))

    first = run(tmp_path / "a", test)
    exported = (tmp_path / "a" / "data.jsonl").read_bytes()
    again = run(tmp_path / "a", test)  # a re-run resumes: nothing redone, the same bytes
    assert (tmp_path / "a" / "data.jsonl").read_bytes() == exported
    assert again.counts == first.counts
    rows = [json.loads(x) for x in exported.decode().splitlines()]
    planted = next(r for r in rows if r["provenance"]["source_method"] == "numeric_variation"
                   and r["problem"]["informal"].startswith("Tom has"))
    bench = tmp_path / "gsm8k_test_planted.jsonl"
    bench.write_text(test.read_text() + json.dumps(
        {"question": planted["problem"]["informal"], "answer": "x\n#### 1"}) + "\n")
    second = run(tmp_path / "b", bench)
    f1, f2 = first.funnel, second.funnel
    assert f1.get("decontaminate_augmented").dropped == {}
    assert f2.get("decontaminate_augmented").dropped == {"contaminated": 1}
    assert f2.get("dedup_augmented").entered == f1.get("dedup_augmented").entered
    assert f2.get("synthesize").left == f1.get("synthesize").left  # the parent stayed clean
    assert second.counts["verified"] == first.counts["verified"] - 1
    data = (tmp_path / "b" / "data.jsonl").read_text()
    assert json.dumps(planted["problem"]["informal"]) not in data
    rej = [json.loads(x) for x in (tmp_path / "b" / "rejected.jsonl").read_text().splitlines()]
    hit = [r for r in rej if r["stage"] == "decontaminate_augmented"]
    assert len(hit) == 1 and hit[0]["record"]["problem"]["id"] == planted["problem"]["id"]
    assert "gsm8k_test_planted" in hit[0]["reason"]


def test_program_with_an_ambiguous_binding_is_not_augmented(comps, shared_data):
    """Train line 60: two steps give 32, so which one a later step uses is a guess."""
    res = load_problems(str(shared_data / "gsm8k" / "train.jsonl"), limit=61)
    progs, outs = _augment(comps, [res.problems[60]])
    assert len(progs) == 1 and not outs[0].kept
    assert outs[0].rejected[0]["reason"] == "ambiguous_constant: 32 is the result of 2 steps"


@pytest.mark.parametrize("question", [
    "Jerry's two daughters each play 8 games of 2 hours. How many hours?",  # "two" is 2
    "A worker earns $60 each hour for 3 hours. How much?",  # 60 minutes in an hour
    "She saves 100 dollars, 20 percent of her pay. What is her pay?",  # percent: /100
])
def test_values_a_word_may_stand_for_are_not_changed(question):
    from verimath.datagen.augment import mutable_constants

    nums = [q for q in question_numbers(question)]
    expr = "*".join(q.text for q in nums)
    claim = 1
    for q in nums:
        claim *= q.value
    prog = parse_reference(question, f"<<{expr}={claim}>>{claim}\n#### {claim}", str(claim))
    muts, _ = mutable_constants(question, prog)
    blocked = {"two": Fraction(2), "hour": Fraction(60), "percent": Fraction(100)}
    word = next(w for w in blocked if w in question)
    assert blocked[word] not in {m.value for m in muts}


def test_augmented_copy_of_an_input_problem_or_of_another_variant_is_dropped(tmp_path):
    from verimath.datagen.dedup import text_hash
    from verimath.datagen.funnel import Funnel
    from verimath.datagen.runner import StageRunner
    from verimath.datagen.synth import AugmentedDedupStage

    def item(key: str, text: str) -> dict:
        return {"key": key, "problem": Problem(id=key, source="s", informal=text).to_dict(),
                "rows": []}

    original = "Tom has 8 apples and eats 4. How many are left?"
    items = [item("a", "tom has 8 apples and eats 4.  How many are left?"),  # = the input
             item("b", "Tom has 9 apples and eats 4. How many are left?"),
             item("c", "Tom has 9 apples and eats 4. How many are left ?")]  # = b
    stage = AugmentedDedupStage(originals=(text_hash(original),))
    res = StageRunner(tmp_path, Funnel()).run(stage, items)
    assert [it["key"] for it in res.kept] == ["b"]
    assert [r["reason"].split(":")[0] for r in res.rejected] == ["duplicate", "duplicate"]
    assert "input problem" in res.rejected[0]["reason"]
    assert "same normalized text as b" in res.rejected[1]["reason"]
    assert AugmentedDedupStage(originals=("x",)).fingerprint != stage.fingerprint
