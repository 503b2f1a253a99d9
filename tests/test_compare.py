"""``mnistctl models compare``: the statistics of mnistctl.compare against known values, and the command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mnistctl.compare import compare, format_p, mcnemar_exact, paired_difference, predictions, verdict
from tests.conftest import run_cli
from tests.test_hardening_registry import _register_copy

# --- statistics ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "b, c, p",
    [
        (1, 9, 0.021484375),  # 2 * (1 + 10) / 2**10
        (9, 1, 0.021484375),  # symmetric
        (0, 1, 1.0),  # 2 * 1/2, capped
        (0, 5, 0.0625),  # 2 / 32
        (0, 6, 0.03125),
        (3, 7, 0.34375),  # 2 * (1 + 10 + 45 + 120) / 1024
        (5, 5, 1.0),
        (0, 0, 1.0),
    ],
)
def test_mcnemar_exact_known_values(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, abs=1e-15)


def test_mcnemar_exact_matches_a_direct_binomial_sum():
    for b, c in [(12, 30), (40, 61), (100, 130), (7, 8)]:
        n = b + c
        direct = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n)
        assert mcnemar_exact(b, c) == pytest.approx(direct, rel=1e-12)


def test_mcnemar_exact_handles_the_largest_split_without_overflow():
    assert mcnemar_exact(29_000, 31_000) == pytest.approx(3.3e-16, rel=0.01)
    assert mcnemar_exact(0, 60_000) == 0.0  # underflows to 0, no OverflowError
    assert mcnemar_exact(30_000, 30_001) == 1.0


def test_mcnemar_exact_refuses_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_paired_difference_known_values():
    difference, low, high = paired_difference(1, 9, 100)
    assert difference == pytest.approx(0.08)
    margin = 1.959963984540054 * math.sqrt((0.10 - 0.08**2) / 100)
    assert (low, high) == pytest.approx((0.08 - margin, 0.08 + margin))
    assert paired_difference(0, 0, 50) == (0.0, 0.0, 0.0)
    assert paired_difference(5, 5, 100)[0] == 0.0
    assert paired_difference(0, 10, 10) == (1.0, 1.0, 1.0)  # B right on all, A on none: no spread
    with pytest.raises(ValueError):
        paired_difference(6, 6, 10)


def test_verdict_and_p_format():
    assert verdict(0.003, 2, 20, "mlp:1", "cnn:1") == "cnn:1 is better: p = 0.003"
    assert verdict(0.003, 20, 2, "mlp:1", "cnn:1") == "mlp:1 is better: p = 0.003"
    assert verdict(0.41, 8, 12) == "no significant difference: p = 0.41"
    assert verdict(1.0, 0, 0) == "no significant difference: p = 1"
    assert format_p(0.021484375) == "= 0.021" and format_p(1e-9) == "< 0.001"


def test_compare_counts_the_table_classes_and_disagreements():
    labels = np.array([0, 1, 2, 3, 0, 1])
    a = np.eye(10)[[0, 1, 2, 9, 5, 1]]  # right: 0, 1, 2, 5
    b = np.eye(10)[[0, 7, 2, 3, 0, 1]]  # right: 0, 2, 3, 4, 5
    b[5] = np.nan  # no answer: wrong
    result = compare(labels, a, b)
    assert result.table == ((2, 2), (2, 0))  # both right: 0, 2; A only: 1, 5; B only: 3, 4
    assert result.discordant == (2, 2) and result.p_value == 1.0
    assert result.accuracy_a == pytest.approx(4 / 6) and result.accuracy_b == pytest.approx(4 / 6)
    assert result.only_a_right().tolist() == [1, 5] and result.only_b_right(1).tolist() == [3]
    assert result.predicted_b[5] == -1
    per_class = result.per_class()
    assert (per_class[0].support, per_class[0].accuracy_a, per_class[0].accuracy_b) == (2, 0.5, 1.0)
    assert per_class[0].difference == 0.5
    assert per_class[9].support == 0 and per_class[9].difference is None


def test_predictions_of_nothing_and_of_nan():
    assert predictions(np.zeros((0, 10))).shape == (0,)
    assert predictions(np.full((1, 10), np.nan)).tolist() == [-1]
    with pytest.raises(ValueError):
        compare(np.array([1, 2]), np.eye(10)[[1]], np.eye(10)[[1, 2]])


# --- the command --------------------------------------------------------------------------------------------------


def _json(*args: str) -> dict:
    result = run_cli("models", "compare", *args, "--json")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)


def test_compare_two_models_json_is_consistent(trained_home):
    from mnistctl.data.loader import load

    _, labels = load("test")
    document = _json("mlp:1", "builtin", "--show", "3")
    table = document["table"]
    n = document["images"]
    assert n == len(labels) == sum(table.values())
    assert document["a"]["model"] == "mlp:1" and document["b"]["model"] == "builtin"
    assert document["a"]["accuracy"] == pytest.approx((table["both_right"] + table["a_right_b_wrong"]) / n)
    assert document["b"]["accuracy"] == pytest.approx((table["both_right"] + table["a_wrong_b_right"]) / n)
    b, c = table["a_right_b_wrong"], table["a_wrong_b_right"]
    assert document["mcnemar"]["p_value"] == pytest.approx(mcnemar_exact(b, c))
    assert document["mcnemar"]["discordant"] == b + c
    difference = document["difference"]
    assert difference["b_minus_a"] == pytest.approx(document["b"]["accuracy"] - document["a"]["accuracy"])
    assert difference["low"] <= difference["b_minus_a"] <= difference["high"]
    assert document["verdict"] == verdict(document["mcnemar"]["p_value"], b, c, "mlp:1", "builtin")
    assert [row["digit"] for row in document["per_class"]] == list(range(10))
    assert sum(row["images"] for row in document["per_class"]) == n
    for key, count in (("a_right_b_wrong", b), ("b_right_a_wrong", c)):
        side = document[key]
        assert side["count"] == count and len(side["shown"]) == min(3, count)
        assert [row["index"] for row in side["shown"]] == sorted(row["index"] for row in side["shown"])
        for row in side["shown"]:
            assert row["label"] == int(labels[row["index"]])
            right, wrong = (row["a"], row["b"]) if key == "a_right_b_wrong" else (row["b"], row["a"])
            assert right == row["label"] != wrong
    # The same accuracy evaluate reports for the same model and split.
    evaluated = json.loads(run_cli("evaluate", "--model", "mlp:1", "--json").stdout)
    assert document["a"]["accuracy"] == pytest.approx(evaluated["accuracy"])


def test_compare_text_output(trained_home):
    result = run_cli("models", "compare", "builtin", "mlp:1", "--show", "2")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    text = result.stdout.decode()
    for expected in ("B - A:", "95% CI", "B right", "A wrong", "McNemar's exact test", "digit", "A right, B wrong"):
        assert expected in text, text
    assert ("is better: p" in text) or ("no significant difference: p" in text)
    assert "TensorFlow" not in result.stderr.decode()


def test_compare_a_version_with_itself_or_a_copy_gives_p_1(trained_home):
    same = _json("mlp:1", "mlp:1")
    _register_copy("twin")
    copy = _json("mlp:1", "twin:1")
    for document in (same, copy):
        assert document["mcnemar"]["p_value"] == 1.0
        assert document["verdict"] == "no significant difference: p = 1"
        assert document["table"]["a_right_b_wrong"] == document["table"]["a_wrong_b_right"] == 0
        assert document["difference"] == {"b_minus_a": 0.0, "low": 0.0, "high": 0.0, "confidence": 0.95}
        assert document["a_right_b_wrong"] == {"count": 0, "shown": []}
    text = run_cli("models", "compare", "mlp:1", "twin:1").stdout.decode()
    assert "no significant difference: p = 1" in text


def test_compare_never_imports_tensorflow(trained_home):
    code = (
        "import sys\n"
        "from mnistctl.cli import main\n"
        "try:\n"
        "    main(['models', 'compare', 'mlp:1', 'builtin', '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "assert 'tensorflow' not in sys.modules and 'scipy' not in sys.modules\n"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_compare_unknown_ref_is_the_usual_error(trained_home):
    result = run_cli("models", "compare", "mlp:1", "cnn")
    assert result.returncode == 1 and "known names: mlp" in result.stderr.decode()
    assert result.stdout == b""


def test_compare_without_data_says_download():
    result = run_cli("models", "compare", "builtin", "builtin")
    assert result.returncode == 1
    assert "not downloaded" in result.stderr.decode() and "mnistctl download" in result.stderr.decode()


def test_compare_show_must_not_be_negative(trained_home):
    assert run_cli("models", "compare", "mlp:1", "builtin", "--show", "-1").returncode == 2
