"""The field study (Chapter 7): epoch-counted options scaled by their share of the release's budget, the Holm
families the preregistration fixes, the descriptive table, on a fabricated study whose answers are known by
hand; one stored cell retrained (slow)."""
import pandas as pd
import pytest

from mmlesson import field, matched
from mmlesson.methods import METHODS, option_names
from mmlesson.stats import compare, holm

from .conftest import assert_stored_seed_0_found_again
from mmlesson.studies import preregistration


def test_an_option_counted_in_epochs_keeps_its_share_of_the_releases_budget():
    assert field.budget_share(20, 90, 16) == 4          # 3.56 rounds to 4
    assert field.budget_share(20, 90, 12) == 3          # 2.67
    assert field.budget_share(10, 30, 15) == 5          # exactly 5
    assert field.budget_share(3, 12, 10) == 3           # 2.5 rounds half up, not to the even 2
    assert field.budget_share(4, 800, 16) == 1          # 0.08: at least one epoch
    assert field.budget_share((0, 70), 100, 16) == (0, 11)  # a window's first epoch stays 0
    severe, mild = field.field_arms(16), field.field_arms(12)
    assert severe["Diagnosing & Re-learning"]["relearn_every"] == 4 and mild["Diagnosing & Re-learning"]["relearn_every"] == 3
    assert severe["G-Blending"]["super_epoch"] == 5 and mild["G-Blending"]["super_epoch"] == 4


def test_every_arm_names_a_registered_method_with_the_options_it_sets():
    for arm, spec in field.field_catalogue(16).items():
        options = {key for key in spec if key != "method"}
        assert spec["method"] in METHODS, arm
        assert options <= set(option_names(spec["method"])), (arm, options)
    for arm, options in field.RELEASED_EPOCHS.items():
        assert set(options) <= set(option_names(field.FIELD_ARMS[arm]["method"])), arm


def test_the_treatments_and_controls_are_the_preregistered_ones():
    plan = preregistration()["field"]
    assert list(field.TREATMENTS) == plan["treatments"] and list(field.CONTROLS) == plan["controls"]
    book = {"OGM-GE", "ARL", "MLA", "CCAT"}
    assert set(field.TREATMENTS) - book == set(field.FIELD_ARMS) - {field.MULTITASK}


def fabricated(gains: dict[str, float], seeds=range(10)):
    """Joint training and the three controls plus ``gains`` ({arm: gain over joint}) on ``seeds`` of regime "r",
    seeds 0-3 re-executed unchanged."""
    rows = []
    for seed in seeds:
        noise = (-0.01, 0.01, 0.0, 0.002, 0.004, -0.006, 0.003, -0.002, 0.001, 0.0)[seed]
        arms = {"joint (concat)": 0.0, "uniform multitask": 0.02, "frozen encoders": 0.05, **gains}
        for execution in (matched.ONE_THREAD, matched.RERUN):
            if execution == matched.RERUN and seed >= 4:
                continue
            for index, (arm, gain) in enumerate(arms.items()):
                jitter = 0.002 * ((seed + index) % 3 - 1)  # each arm its own small deviation per seed
                acc = 0.5 + gain + noise + jitter
                rows.append({"regime": "r", "arm": arm, "seed": seed, "execution": execution, "test acc": acc,
                             "branch visual": acc - 0.2, "probe visual": acc - 0.1})
    return pd.DataFrame(rows)


def test_each_family_holds_one_control_one_endpoint_class_and_holm_corrects_within_it():
    study = fabricated({"MMPareto": 0.10, "PMR": 0.0})
    primary = field.field_comparisons(study, "r", "joint (concat)", primary=True)
    # the uniform multitask control is judged against joint training only ([field] control_claim)
    assert set(primary) == {(t, e) for t in ("MMPareto", "PMR", "uniform multitask")
                            for e in ("visual branch", "visual probe")}
    assert primary["MMPareto", "visual branch"].verdict == "better"
    assert primary["PMR", "visual branch"].verdict == "equivalent"
    against_multitask = field.field_comparisons(study, "r", "uniform multitask", primary=False)
    assert set(against_multitask) == {("MMPareto", "fused"), ("PMR", "fused")}
    assert against_multitask["MMPareto", "fused"].mean == pytest.approx(0.08, abs=0.001)
    assert against_multitask["PMR", "fused"].verdict == "worse"  # 0.02 below the control, SESOI 0.01
    # Holm over the family's two claims, not over the regime's nine families
    values = matched.per_seed(study, "r", "test acc")
    expected = holm([compare(values[t], values["frozen encoders"], 0.01, t) for t in ("MMPareto", "PMR")])
    found = field.field_comparisons(study, "r", "frozen encoders", primary=False)
    for treatment, c in zip(("MMPareto", "PMR"), expected):
        assert found[treatment, "fused"].p_difference == pytest.approx(c.p_difference)
        assert found[treatment, "fused"].verdict == c.verdict


def test_the_verdict_table_has_one_row_per_treatment_and_one_column_per_endpoint():
    table = field.verdict_table(fabricated({"MMPareto": 0.10}), "r", "joint (concat)")
    assert list(table.columns) == list(matched.ENDPOINTS)
    assert table.loc["MMPareto"].str.startswith("better by 0.10").all()


def test_the_descriptive_table_gives_the_probability_of_improvement_over_joint():
    table = field.improvement_table(fabricated({"MMPareto": 0.10}), "r")
    assert table.loc["MMPareto", "P(better than joint)"] == 1.0  # every MMPareto run beats every joint run
    assert pd.isna(table.loc["joint (concat)", "P(better than joint)"])
    assert table.loc["MMPareto", "fused"] == pytest.approx(table.loc["joint (concat)", "fused"] + 0.10)


def test_the_probability_over_regimes_averages_each_regimes(monkeypatch):
    monkeypatch.setattr(field, "REGIMES", {"r": "synthav-severe-v2", "s": "synthav-mild-v2"})
    study = pd.concat([fabricated({"MMPareto": 0.10}), fabricated({"MMPareto": -0.10}).assign(regime="s")])
    table = field.improvement_over_regimes(study, ["MMPareto"])
    assert table.loc["MMPareto", "P(better than joint), both regimes"] == pytest.approx(0.5)  # 1 in r, 0 in s


def test_the_combined_study_keeps_the_matched_rows_of_an_arm_both_hold():
    matched_rows = fabricated({}).assign(source="matched")
    field_rows = fabricated({"MMPareto": 0.1}).assign(source="field")
    combined = field.combined_study(field_rows, matched_rows)
    assert set(combined[combined["arm"] == "joint (concat)"]["source"]) == {"matched"}
    assert set(combined[combined["arm"] == "MMPareto"]["source"]) == {"field"}


@pytest.mark.slow
def test_the_stored_field_study_comes_from_the_code(tmp_path):
    """Retrain one stored cell of each regime (MMCosine, seed 0) and find the stored numbers again, to within three
    standard deviations of what the measured two-thread re-execution moved that arm."""
    stored = pd.read_csv(field.FIELD_FILE)
    assert sorted(stored["seed"].unique()) == list(matched.EVALUATION_SEEDS)
    arm = "MMCosine"
    assert_stored_seed_0_found_again(stored, field.field_study(seeds=(0,), rerun_seeds=(), results=tmp_path,
                                                                arms=[arm]), arm)
