"""The one gold extractor (verimath.gold): every format a dataset's answer field comes in."""

import pytest

from verimath.gold import explain_gold, extract_gold, find_last_boxed
from verimath.reasoning import extract


@pytest.mark.parametrize("value,gold", [
    # numbers (SVAMP, AMC, AIME answer columns)
    (204, "204"), (27.0, "27"), (15.5, "15.5"), (-3, "-3"),
    # lists: OlympiadBench final_answer; several answers -> a set math-verify compares as one
    (["$\\frac{1}{2}$"], "\\frac{1}{2}"), (["1", "2"], "1, 2"), ([3, "3", 4], "3, 4"),
    # GSM8K solutions
    ("She sells 16 - 3 - 4 = 9 eggs.\n#### 1,234", "1234"), ("a\n#### -5 ", "-5"),
    # MATH / Minerva solutions: last box; units after or inside the box dropped
    ("so the length is $\\boxed{1.6} \\mathrm{~cm}$.", "1.6"),
    ("Thus \\boxed{5\\text{ cm}}.", "5"),
    ("First \\boxed{2}, then \\boxed{\\frac{3}{4}}.", "\\frac{3}{4}"),
    ("\\boxed{\\$18.90}", "18.90"),
    ("so \\boxed{3}.\nThe answer is: 3", "3"),
    # "the answer is" markers (MATH-500 copy, Minerva's "Final answer" lines)
    ("Work.\nFinal answer: The final answer is 1.6. I hope it is correct.", "1.6"),
    ("blah\nThe answer is: $x^2+1$", "x^2+1"),
    # bare answers (answer columns, college-math)
    ("\\frac{1}{2}", "\\frac{1}{2}"), ("$-\\frac{1}{3}$", "-\\frac{1}{3}"),
    ("9 (apples)", "9"), ("18 dollars", "18"), ("(1, 2]", "(1, 2]"), ("Sunday", "Sunday"),
    ("\\text{(C)}", "\\text{(C)}"), ("1, 2", "1, 2"),
    ("Final Answer: 12", "12"),
    # nothing to extract ("the answer" without "is" / ":" is not a marker)
    ("We check the answer by substitution.\nIt works for every case we tried.", None),
    ("Janet has eggs.\nShe sells them at the market every day.", None),
    ("a long solution without any marked answer in it so we get it", None),
    ("", None), (None, None), (True, None), ([], None), ({"a": 1}, None), (float("nan"), None),
    ("\\boxed{}", None), (["1", None], None),
])
def test_extract_gold_table(value, gold):
    assert extract_gold(value) == gold


@pytest.mark.parametrize("value,why", [
    (None, "null"), (True, "boolean"), ([], "empty list"), (["1", None], "list element 1"),
    ("\\boxed{}", "empty \\boxed{}"), ("line one\nline two of a solution", "no \\boxed{}"),
])
def test_explain_gold_says_why(value, why):
    r = explain_gold(value)
    assert r.answer is None and why in r.why


def test_dataset_modes_and_unknown():
    assert extract_gold("x\n#### 7", "gsm8k") == "7"
    assert extract_gold("7", "gsm8k") is None  # GSM8K mode wants its marker
    assert extract_gold("7", "math500") is None  # MATH mode wants a box or "The answer is"
    with pytest.raises(ValueError, match="unknown dataset"):
        extract_gold("x", "aime")


@pytest.mark.parametrize("value", ["1234", "\\frac{1}{2}", "1, 2", "x^2+1", "Sunday", "1.6"])
def test_extracted_gold_is_a_fixed_point(value):
    """The grader re-extracts a loaded gold: that must not change it."""
    assert extract_gold(extract_gold(value)) == extract_gold(value) == value


def test_one_function_for_loader_and_grader():
    assert extract.extract_gold is extract_gold


def test_find_last_boxed_nested_and_unclosed():
    assert find_last_boxed("\\boxed{\\frac{1}{2}} and \\boxed{x") == "\\frac{1}{2}"
    assert find_last_boxed("\\boxed 5.") == "5"
    assert find_last_boxed("none") is None
