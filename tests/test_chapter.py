"""The chapters' one setting object: what setup decides, which rates and data a run gets, one Holm family."""
import numpy as np
import pytest

from mmlesson import chapter as chapter_module
from mmlesson import stats
from mmlesson.chapter import SEVERE, SMOKE_DATA, Chapter
from mmlesson.errors import ConfigError
from mmlesson.precision import run_rerun_sd
from mmlesson.rates import protocol_learning_rates


def test_setup_on_synthav_takes_the_severe_regime_and_its_protocol_rates(capsys):
    chapter = Chapter.setup("ogm_ge", "synthav", seeds=range(3), device="cpu")
    assert chapter.recipe == SEVERE and chapter.seeds == [0, 1, 2] and str(chapter.device) == "cpu"
    assert chapter.rates == protocol_learning_rates(SEVERE) and chapter.data_knobs == {}
    assert chapter.train == {"device": "cpu"}
    assert "device: cpu" in capsys.readouterr().out


def test_smoke_is_two_seeds_small_data_and_few_epochs():
    chapter = Chapter.setup("ccat", "synthav", device="cpu", smoke=True, smoke_epochs=2)
    assert chapter.seeds == [0, 1] and chapter.data_knobs == SMOKE_DATA
    assert chapter.train == {"epochs": 2, "device": "cpu"}


def test_real_data_takes_the_papers_recipe_and_rate(tmp_path):
    chapter = Chapter.setup("arl", "cremad", device="cpu", data_dir=tmp_path)
    assert chapter.recipe == "arl-cremad" and chapter.rates == {} and chapter.oracle() == {}
    with pytest.raises(ConfigError, match="no ccat protocol for DATASET='ave'"):
        Chapter.setup("ccat", "ave", device="cpu", data_dir=tmp_path)


def test_run_gives_each_arm_its_protocol_rate_unless_it_has_its_own(monkeypatch):
    seen = {}

    def fake_run_arms(arms, seeds, recipe, data_knobs, train, results, data_dir, name, **options):
        seen.update(arms=arms, seeds=seeds, recipe=recipe, data_knobs=data_knobs, train=train, name=name)
        return {}

    monkeypatch.setattr(chapter_module, "run_arms", fake_run_arms)
    chapter = Chapter.setup("ogm_ge", "synthav", device="cpu", smoke=True)
    chapter.run({"joint (concat)": dict(method="joint"), "mine": dict(method="joint", lr=0.5),
                 "unknown arm": dict(method="arl")}, name="g", seeds=[7])
    assert seen["arms"]["joint (concat)"]["lr"] == chapter.rates["joint (concat)"]
    assert seen["arms"]["mine"]["lr"] == 0.5 and "lr" not in seen["arms"]["unknown arm"]
    assert seen["seeds"] == [7] and seen["recipe"] == SEVERE and seen["data_knobs"] == SMOKE_DATA
    assert seen["train"] == {"epochs": 1, "device": "cpu"} and seen["name"] == "g"


def test_judge_is_one_holm_family_printed_once(capsys):
    """Only the retrained claims are labelled (sqrt(2) x one run's spread: both sides re-execute; one run's spread
    where a side is constant); the others keep the clear / near-its-boundary label."""
    import math

    chapter = Chapter.setup("ogm_ge", "synthav", device="cpu")
    capsys.readouterr()
    rng = np.random.default_rng(1)
    control = rng.normal(0.6, 0.01, 10)
    table = [("a gains", control + 0.2 + rng.normal(0, 0.01, 10), control, 0.01),
             ("b ties", control + rng.normal(0, 0.002, 10), control, 0.02),
             ("c below an oracle", control, [0.9] * 10, 0.01),
             ("d a log ratio", control + 1.0 + rng.normal(0, 0.01, 10), control, 0.1)]
    verdicts = chapter.judge(table, retrained=[0, 1, 2])
    (rate,) = set(chapter.rates.values())  # one protocol rate for every arm
    run = run_rerun_sd(chapter.recipe, lr=rate)  # the severe regime's measured re-execution spread at that rate
    assert run == chapter.run_rerun_sd and run != run_rerun_sd(chapter.recipe)
    expected = stats.with_stability(stats.holm([stats.compare(t, c, sesoi, claim) for claim, t, c, sesoi in table]),
                                    [math.sqrt(2) * run, math.sqrt(2) * run, run, None])
    assert verdicts == expected and [v.verdict for v in verdicts] == ["better", "equivalent", "worse", "better"]
    assert [v.stable is None for v in verdicts] == [False, False, False, True]
    assert verdicts[0].verdict_text().endswith(", stable") and "stable" not in verdicts[3].verdict_text()
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 5 and printed[1] == f"- a gains: {verdicts[0].verdict_text()} (smallest effect of interest 0.01)"
    with pytest.raises(ValueError, match=r"not in the table: \[7\]"):
        chapter.judge(table, retrained=[7])


def test_a_smoke_run_is_not_labelled_with_a_regime_it_does_not_train(capsys):
    """The stability label comes from the precision study's regime; a smoke run (small data, one epoch) is not it."""
    chapter = Chapter.setup("ogm_ge", "synthav", device="cpu", smoke=True)
    control = np.linspace(0.5, 0.6, 10)
    (verdict,) = chapter.judge([("a gains", control + 0.1, control, 0.01)], retrained=[0])
    assert verdict.survival is None and "stable" not in verdict.verdict_text()


def test_named_claims_come_back_by_name(capsys):
    chapter = Chapter.setup("ogm_ge", "synthav", device="cpu")
    control = np.linspace(0.5, 0.6, 10)
    verdicts = chapter.judge({"gain": ("a gains", control + 0.1, control, 0.01),
                              "same": ("b ties", control, control, 0.01)})
    assert list(verdicts) == ["gain", "same"]
    assert verdicts["gain"].claim == "a gains" and verdicts["gain"].verdict == "better"
    assert verdicts["same"].verdict == "equivalent" and verdicts["same"].corrected


def test_the_checked_tolerance_is_three_standard_errors_of_a_re_execution_rounded_up():
    """Ten seeds of the severe regime at its protocol rate: a run's accuracy moves by sd s under a re-execution (the
    largest of fused and branch accuracy's), their mean by
    s / sqrt(10); three of those, rounded up to 0.005. A smoke run falls back to 0.03."""
    import json
    import math

    from mmlesson.precision import PRECISION_FILE

    measured = json.loads(PRECISION_FILE.read_text())["severe v2, protocol rate"]["precision"]
    s = max(measured[f"rerun_sd_change_{m}"] for m in ("fused", "branch_audio", "branch_visual"))
    chapter = Chapter.setup("ogm_ge", "synthav", device="cpu")
    assert chapter.tolerance == pytest.approx(math.ceil(3 * s / math.sqrt(10) / 0.005) * 0.005)
    assert Chapter.setup("ogm_ge", "synthav", device="cpu", smoke=True).tolerance == 0.03
