"""The book's stored studies: the learning-rate rule with its edge extension, and the results at a glance
(paired gains over joint training per regime), on fabricated runs whose answers are known by hand."""
import pandas as pd
import pytest

from mmlesson import book, page, rates, studies
from mmlesson.errors import MMLessonError


def fake_run(lr, seed):
    return {"config": {"lr": lr, "seed": seed}, "final": {"val": {"acc": 0.5 + lr}, "test": {"acc": 0.5}}, "history": []}


def test_a_choice_at_the_grid_edge_is_extended_one_step_and_chosen_again(monkeypatch):
    trained = []

    def run_arms(arms, seeds, recipe, *args, **kwargs):  # validation accuracy grows with the rate up to 0.3
        trained.extend(arms)
        return {label: [fake_run(min(spec["lr"], 0.3 - (spec["lr"] - 0.3)), s) for s in seeds]
                for label, spec in arms.items()}

    monkeypatch.setattr(studies, "run_arms", run_arms)
    study = studies.learning_rate_study({"joint": {"method": "joint"}}, "synthav-severe", rates=(0.05, 0.1, 0.2),
                                     seeds=(100, 101), extend_edges=True)
    assert sorted(study["lr"].unique()) == [0.05, 0.1, 0.2, 0.4]  # 0.2 was the edge: 0.4 is tried
    assert "joint @ lr 0.4" in trained and "joint @ lr 0.8" not in trained  # one step only
    assert rates.choose_learning_rates(study) == {"joint": 0.2}  # 0.4 ties with 0.2 (0.7 each): the smaller wins
    inside = studies.learning_rate_study({"joint": {"method": "joint"}}, "synthav-severe", rates=(0.1, 0.3, 0.5),
                                      seeds=(100,), extend_edges=True)
    assert sorted(inside["lr"].unique()) == [0.1, 0.3, 0.5]  # an inner choice needs no extension


def test_a_rate_at_which_a_tuning_run_failed_is_not_eligible(monkeypatch):
    def run_arms(arms, seeds, recipe, *args, keep_failed=False, **kwargs):  # 0.2 is best but diverges on seed 101
        assert keep_failed  # the study records a failure instead of stopping
        return {label: [{"failed": "TrainingDiverged: loss became nan; the checkpoint is kept in /x; lower --lr", "run_dir": "x"} if spec["lr"] == 0.2 and s == 101
                        else fake_run(spec["lr"], s) for s in seeds] for label, spec in arms.items()}

    monkeypatch.setattr(studies, "run_arms", run_arms)
    study = studies.learning_rate_study({"ccat": {"method": "ccat"}}, "synthav-severe", rates=(0.05, 0.1, 0.2),
                                     seeds=(100, 101))
    failed = study[study["lr"] == 0.2]
    assert failed["val acc"].isna().tolist() == [False, True] and "nan" in failed["failed"].iloc[1]
    assert "/x" not in failed["failed"].iloc[1]  # the reason is stored, not the run's directory
    assert rates.choose_learning_rates(study) == {"ccat": 0.1}  # 0.2's one good seed (0.7) does not count
    table = rates.learning_rate_table(study)
    assert table.loc["ccat", 0.2].startswith("failed on 1 of 2 seeds") and table.loc["ccat", 0.1].endswith("*")
    study.loc[study["lr"] != 0.2, "val acc"] = None
    with pytest.raises(MMLessonError, match="every learning rate of ccat failed"):
        rates.choose_learning_rates(study)


def test_rerunning_an_arm_that_reads_encoders_reruns_their_arms_first(monkeypatch, tmp_path, capsys):
    """`--arms "frozen encoders"` trains the unimodal arms too: the frozen arm is trained on the encoders of
    the rate the rule chose for each of them (0.1 here: validation accuracy grows with the rate)."""
    trained = {}

    def run_arms(arms, seeds, recipe, *args, **kwargs):
        trained.update(arms)
        return {label: [fake_run(spec["lr"], s) for s in seeds] for label, spec in arms.items()}

    monkeypatch.setattr(studies, "run_arms", run_arms)
    out = tmp_path / "study.csv"
    assert book.main(["learning-rates", "--recipe", "synthav", "--arms", "frozen encoders", "--out", str(out)]) == 0
    assert trained["frozen encoders @ lr 0.05"]["encoders_from"] == ["audio only @ lr 0.1", "visual only @ lr 0.1"]
    assert set(pd.read_csv(out)["arm"]) == {"audio only", "visual only", "frozen encoders"}
    with pytest.raises(MMLessonError, match="read the encoders of audio only, visual only, which it does not train"):
        studies.learning_rate_study({"frozen": {"method": "frozen_encoders", "encoders_from": ["audio only",
                                                                                        "visual only"]}}, "synthav")


def test_replacing_one_arm_keeps_the_others_rows():
    stored = pd.DataFrame({"regime": ["severe", "severe", "mild"], "arm": ["CCAT", "ARL", "CCAT"], "test acc": [1, 2, 3]})
    fresh = pd.DataFrame({"regime": ["severe"], "arm": ["CCAT"], "test acc": [9]})
    merged = studies.replace_rows(stored, fresh, regimes=["severe"])
    assert sorted(merged["test acc"]) == [2, 3, 9]  # the mild CCAT row stays: only the named regimes are replaced
    assert sorted(studies.replace_rows(stored, fresh)["test acc"]) == [2, 9]


def glance_study():
    rows = []
    for regime, gain in (("severe", 0.10), ("mild", 0.0)):
        for seed in range(4):
            noise = (-0.01, 0.01, 0.0, 0.002)[seed]
            for arm, acc in (("joint (concat)", 0.5 + noise), ("OGM-GE", 0.5 + gain + noise + 0.001 * seed)):
                rows.append({"regime": regime, "arm": arm, "seed": seed, "lr": 0.1, "test acc": acc, "val acc": acc,
                             "classes": 6, "train acc": "0.5 0.9", "branch audio": 0.4, "branch visual": 0.2,
                             "probe audio": 0.4, "probe visual": 0.3})
    return pd.DataFrame(rows)


def test_glance_gains_are_paired_differences_with_their_verdicts(monkeypatch):
    monkeypatch.setattr(studies, "GLANCE_ARMS", {"joint (concat)": {}, "OGM-GE": {}})
    table = studies.glance_table(glance_study())
    # severe: differences 0.100, 0.101, 0.102, 0.103 -> mean 0.1015, far above the SESOI of 0.01
    assert table.loc["OGM-GE", "severe: gain [95% CI]"].startswith("+0.101 [")
    assert table.loc["OGM-GE", "severe: verdict"] == "better"
    assert table.loc["OGM-GE", "mild: verdict"] == "equivalent"  # differences 0.000-0.003, inside +-0.01
    assert table.loc["OGM-GE", "CREMA-D, paper"] == "+0.055 (ARL Table 1)"


def test_stored_runs_give_what_the_signature_reads():
    runs = studies.stored_runs(glance_study(), "severe")
    first = runs["joint (concat)"][0]
    assert first["config"]["seed"] == 0 and [e["train"]["acc"] for e in first["history"]] == [0.5, 0.9]
    assert first["final"]["test"]["branch_acc"] == {"audio": 0.4, "visual": 0.2}
    assert len(first["final"]["test"]["per_class_acc"]) == 6


def test_the_stored_results_at_a_glance_come_from_the_code(tmp_path):
    """Retrain one stored cell of each regime (joint concat, seed 0) and find the stored numbers again, to within
    what a re-execution under another float order moves them in that regime (``precision.rerun_tolerance``: three
    standard deviations of the measured two-thread change, at least 0.03). Another CPU is such a re-execution:
    in the first severe calibration a joint run moves by 0.05 on average."""
    from mmlesson.precision import rerun_tolerance

    stored = pd.read_csv(studies.GLANCE_FILE)
    runs = studies.at_a_glance_study(results=tmp_path, seeds=(0,), regimes=studies.GLANCE_REGIMES,
                                     arms={"joint (concat)": studies.GLANCE_ARMS["joint (concat)"]})
    for regime in studies.GLANCE_REGIMES:
        mine = runs[(runs["regime"] == regime) & (runs["arm"] == "joint (concat)")].iloc[0]
        theirs = stored[(stored["regime"] == regime) & (stored["arm"] == "joint (concat)") & (stored["seed"] == 0)].iloc[0]
        assert mine["lr"] == theirs["lr"]
        for column in ("test acc", "val acc", "branch audio", "branch visual"):
            tolerance = rerun_tolerance(regime, column)
            assert abs(mine[column] - theirs[column]) <= tolerance, (regime, column, mine[column], theirs[column])


def test_the_stored_side_studies_come_from_the_code(tmp_path, monkeypatch):
    """Retrain one stored cell of each side study (seed 0 of its joint model) and find the stored numbers
    again (to within the re-execution tolerance, as above: regime B and the regime map, regime A's generator with
    other knobs, take the mild regime's measured spread); the study lists every arm the chapters read."""
    from mmlesson.precision import rerun_tolerance

    stored = pd.read_csv(studies.SIDE_FILE)
    grids = studies.side_study_grids()
    for study, (_, arms, seeds) in grids.items():
        rows = stored[stored["regime"] == study]
        assert set(rows["arm"]) == set(arms) and sorted(set(rows["seed"])) == list(seeds), study
    one_each = {study: (grids[study][0], {arm: grids[study][1][arm]}, grids[study][2])  # one joint cell each
                for study, arm in (("regime B", "joint (concat)"), ("regime map", "joint, audio 1.5, visual 0.7"))}
    monkeypatch.setattr(studies, "side_study_grids", lambda: one_each)
    mine = studies.side_studies(results=tmp_path, seeds=(0,))
    for row in mine.to_dict("records"):
        theirs = stored[(stored["regime"] == row["regime"]) & (stored["arm"] == row["arm"]) & (stored["seed"] == 0)].iloc[0]
        assert row["lr"] == theirs["lr"]
        for column in ("test acc", "val acc", "branch audio", "branch visual"):
            tolerance = rerun_tolerance(row["regime"], column)
            assert abs(row[column] - theirs[column]) <= tolerance, (row["regime"], row["arm"], column)


def test_show_code_shows_the_methods_own_source(monkeypatch):
    import IPython.display

    from mmlesson.methods.ogm_ge import OGMGE, coefficients

    text = page.method_source(OGMGE.training_step, coefficients)
    assert text.startswith("def training_step(self, model, batch, optimizer, state):")
    assert "\n\ndef coefficients(" in text and "modulate_gradients(model, factors" in text
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    page.show_code(OGMGE.training_step)
    [markdown] = shown
    assert markdown.data == f"```python\n{page.method_source(OGMGE.training_step)}\n```"


def test_a_one_rate_recipe_refuses_arms_in_one_line(capsys):
    """A one-rate recipe's study trains its control alone: asking for other arms is refused, not ignored."""
    with pytest.raises(SystemExit) as stopped:
        book.main(["learning-rates", "--recipe", "synthav-severe-v2", "--arms", "ARL"])
    assert stopped.value.code == 2
    assert "one rate for every arm, chosen on joint (concat) alone: drop --arms" in capsys.readouterr().err
