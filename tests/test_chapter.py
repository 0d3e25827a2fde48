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


def test_run_gives_each_arm_its_protocol_rate_unless_it_has_its_own_and_refuses_one_without(monkeypatch):
    seen = {}

    def fake_run_arms(arms, seeds, recipe, data_knobs, train, results, data_dir, name, **options):
        seen.update(arms=arms, seeds=seeds, recipe=recipe, data_knobs=data_knobs, train=train, name=name)
        return {}

    monkeypatch.setattr(chapter_module, "run_arms", fake_run_arms)
    chapter = Chapter.setup("ogm_ge", "synthav", device="cpu", smoke=True)
    with pytest.raises(ConfigError, match="arm 'unknown arm' has no protocol learning rate in synthav-severe-v2"):
        chapter.run({"joint (concat)": dict(method="joint"), "unknown arm": dict(method="arl")}, name="g")
    assert not seen  # refused before anything trains
    chapter.run({"joint (concat)": dict(method="joint"), "mine": dict(method="joint", lr=0.5)}, name="g", seeds=[7])
    assert seen["arms"]["joint (concat)"]["lr"] == chapter.rates["joint (concat)"]
    assert seen["arms"]["mine"]["lr"] == 0.5
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


def test_the_verbs_that_take_the_chapters_setting_pass_it_on(monkeypatch, tmp_path):
    """``models`` and ``run_grid`` read the chapter's data_dir and store; ``learning_rate_table`` its recipe."""
    seen = {}
    monkeypatch.setattr(chapter_module, "models_and_data", lambda runs, data_dir: seen.update(models=(runs, data_dir)))
    monkeypatch.setattr(chapter_module, "run_grid", lambda grid, results, roots, **options: seen.update(
        grid=(grid, results, roots, options)))
    chapter = Chapter.setup("arl", "cremad", device="cpu", data_dir=tmp_path, results=tmp_path / "store")
    chapter.models(["a run"])
    chapter.run_grid("a grid", quiet=True)
    assert seen["models"] == (["a run"], tmp_path)
    assert seen["grid"] == ("a grid", chapter.store, tmp_path, {"quiet": True})
    severe = Chapter.setup("ogm_ge", "synthav", device="cpu")
    table = severe.learning_rate_table({"joint (concat)": {}})
    assert list(table.index) == ["joint (concat)"] and table.equals(
        chapter_module.learning_rate_table(arms=["joint (concat)"], recipe=SEVERE))


def test_the_lines_the_books_tests_compare_are_the_pages(capsys):
    """``checked`` and ``claims`` print what ``page.checked`` and ``page.claims`` print (tests/nbval_tolerance.py
    reads them), ``checked`` at the chapter's tolerance unless told another; ``claims`` takes what judge returns."""
    from mmlesson import page

    chapter = Chapter.setup("ogm_ge", "synthav", device="cpu")
    control = np.linspace(0.5, 0.6, 10)
    verdicts = chapter.judge({"gain": ("a gains", control + 0.1, control, 0.01)}, plot=False)
    capsys.readouterr()
    chapter.claims(verdicts)
    chapter.checked({"a number": 0.12345})
    chapter.checked({"another": 1.0}, tolerance=0.25, digits=2)
    mine = capsys.readouterr().out
    page.claims(list(verdicts.values()))
    page.checked({"a number": 0.12345}, chapter.tolerance)
    page.checked({"another": 1.0}, 0.25, 2)
    assert mine == capsys.readouterr().out and "numbers checked to within ±0.25\nanother: 1.00\n" in mine


def test_a_stored_study_is_read_by_its_name():
    import pandas as pd

    from mmlesson.matched import MATCHED_FILE
    from mmlesson.precision import stored_study
    from mmlesson.studies import SIDE_FILE, stored_runs

    side = Chapter.stored("side studies")
    assert side.equals(pd.read_csv(SIDE_FILE)) and Chapter.stored("matched").equals(pd.read_csv(MATCHED_FILE))
    assert Chapter.stored("side studies", "regime B") == stored_runs(side, "regime B")
    assert Chapter.stored("precision") == stored_study()
    with pytest.raises(ConfigError, match="unknown stored study 'side study' .did you mean side studies"):
        Chapter.stored("side study")


def test_one_chapter_namespace():
    """Every name of ``__all__`` is there, and each chapter of the book imports at most three mmlesson modules:
    ``mmlesson.chapter``, the figures (``mmlesson.plots``) and at most one whose code it teaches."""
    import ast
    from pathlib import Path

    assert all(hasattr(chapter_module, name) for name in chapter_module.__all__)
    assert len(set(chapter_module.__all__)) == len(chapter_module.__all__)
    book = Path(__file__).resolve().parents[1] / "book"
    for path in sorted(book.glob("ch*.py")) + [book / "precision.py"]:
        modules = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mmlesson":
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names if alias.name.split(".")[0] == "mmlesson"}
        assert "mmlesson.chapter" in modules and len(modules) <= 3, (path.name, sorted(modules))
