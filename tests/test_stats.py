"""mmlesson.stats against hand-worked examples and against scipy / statsmodels computed directly."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mmlesson import readouts, stats


def test_paired_interval_by_hand():
    # differences 0.10, 0.10, 0.05: mean 0.08333, sd 0.028868, se 0.016667, t(0.975, 2) = 4.302653
    treatment, control = [0.9, 0.8, 0.75], [0.8, 0.7, 0.7]
    c = stats.compare(treatment, control, sesoi=0.01)
    assert c.n == 3 and c.mean == pytest.approx(0.25 / 3)
    assert c.sd == pytest.approx(math.sqrt(((0.1 - 0.25 / 3) ** 2 * 2 + (0.05 - 0.25 / 3) ** 2) / 2))
    half = 4.302652729749464 * c.sd / math.sqrt(3)
    assert (c.ci_low, c.ci_high) == pytest.approx((c.mean - half, c.mean + half))
    t = c.mean / (c.sd / math.sqrt(3))  # 5.0
    assert t == pytest.approx(5.0)
    assert c.p_difference == pytest.approx(2 * scipy_stats.t.sf(5.0, 2))  # 0.0377
    assert c.verdict == "better"


def test_tost_by_hand():
    # differences with mean 0.001 and sd 0.002 over 10 seeds, bounds +-0.01:
    # t_low = (0.001 + 0.01) / se, t_high = (0.001 - 0.01) / se; p = max of the one-sided p-values
    differences = np.array([0.003, -0.001, 0.001, 0.003, -0.001, 0.001, 0.003, -0.001, 0.001, 0.001])
    control = np.full(10, 0.7)
    c = stats.compare(control + differences, control, sesoi=0.01)
    se = differences.std(ddof=1) / math.sqrt(10)
    expected = max(scipy_stats.t.sf((differences.mean() + 0.01) / se, 9), scipy_stats.t.cdf((differences.mean() - 0.01) / se, 9))
    assert c.p_equivalence == pytest.approx(expected, rel=1e-6)
    assert c.verdict == "equivalent"


def test_worse_undetermined_and_seeds_needed():
    rng = np.random.default_rng(0)
    control = rng.normal(0.7, 0.02, 10)
    worse = stats.compare(control - 0.05 + rng.normal(0, 0.01, 10), control, sesoi=0.01)
    assert worse.verdict == "worse" and worse.ci_high < 0
    noisy = stats.compare(control + rng.normal(0.01, 0.03, 10), control, sesoi=0.01)
    assert noisy.verdict == "undetermined" and noisy.ci_low < 0 < noisy.ci_high
    assert noisy.seeds_needed > 10
    assert noisy.verdict_text() == (f"undetermined: {noisy.mean:+.3f} [{noisy.ci_low:+.3f}, {noisy.ci_high:+.3f}]; "
                                    f"about {noisy.seeds_needed} seeds would decide")
    # planned from the smallest effect of interest: the first n whose 95% half-width at this spread is sesoi / 2
    n = 2
    while scipy_stats.t.ppf(0.975, n - 1) * noisy.sd / math.sqrt(n) > 0.01 / 2:
        n += 1
    assert noisy.seeds_needed == n


def test_an_undetermined_verdict_whose_uncorrected_interval_excludes_zero_names_holm():
    """Holm's adjusted p-value decides; the printed interval is the claim's own, so where it excludes zero the
    text says the correction is what leaves the claim undecided (and only then)."""
    rng = np.random.default_rng(4)
    control = rng.normal(0.6, 0.02, 10)
    marginal = control + 0.02 + rng.normal(0, 0.02, 10)
    family = [stats.compare(marginal, control, sesoi=0.01, claim="marginal")] + [
        stats.compare(control + rng.normal(0, 0.02, 10), control, sesoi=0.01, claim=f"null {i}") for i in range(9)]
    alone, corrected = family[0], stats.holm(family)[0]
    assert alone.ci_low > 0 and alone.verdict == "better"  # significant on its own
    assert corrected.verdict == "undetermined" and corrected.ci_low == alone.ci_low
    assert ", not significant after Holm's correction (the interval is uncorrected); about" in corrected.verdict_text()
    assert all("Holm" not in c.verdict_text() for c in stats.holm(family)[1:] if c.ci_low < 0 < c.ci_high)


def test_seeds_needed_is_planned_from_the_sesoi_not_the_observed_difference():
    # sd 0.1, SESOI 0.1: t(0.975, 17) / sqrt(18) = 0.497 <= 0.5, t(0.975, 16) / sqrt(17) = 0.514 > 0.5
    assert stats.seeds_needed(0.1, 0.1) == 18
    rng = np.random.default_rng(3)
    base = rng.normal(0, 0.05, 10)
    small, large = (stats.compare(base + shift, np.zeros(10), 0.1) for shift in (0.0, 0.04))
    assert small.sd == pytest.approx(large.sd) and small.seeds_needed == large.seeds_needed  # the mean plays no part
    assert stats.seeds_needed(0.0, 0.1) is None and stats.seeds_needed(10.0, 1e-3) == stats.MAX_SEEDS
    # at that many seeds an interval decides whatever the difference: it excludes 0 or lies within +-SESOI
    n = stats.seeds_needed(0.05, 0.02)
    half = scipy_stats.t.ppf(0.975, n - 1) * 0.05 / math.sqrt(n)
    for mean in np.linspace(-0.05, 0.05, 41):
        assert mean - half > 0 or mean + half < 0 or (-0.02 <= mean - half and mean + half <= 0.02)


def test_holm_adjust_rows_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).uniform(0, 0.2, (50, 6))
    expected = np.array([multipletests(row, method="holm")[1] for row in p])
    assert stats.holm_adjust(p) == pytest.approx(expected)


def test_stability_without_rerun_spread_and_far_from_the_boundary():
    rng = np.random.default_rng(1)
    clear = stats.compare(rng.normal(0.2, 0.01, 10), np.zeros(10), 0.01, "clear")
    [same] = stats.with_stability([clear], [0.0])
    assert same.survival == 1.0 and same.stable and same.verdict_text().endswith(", stable")
    [far] = stats.with_stability([clear], [0.01])
    assert far.survival > 0.999
    [unmeasured] = stats.with_stability([clear], [None])
    assert unmeasured.survival is None and unmeasured.stable is None


def test_stability_predicts_how_often_two_executions_agree():
    """Under the random-effects model (seed effect mu_i, training noise eta_i drawn anew by a re-execution),
    with true effects spread over and around the decision boundaries, the predicted survival matches on
    average the rate at which two executions of the same seeds give the same verdict, and the verdicts
    labelled stable agree at least 90% of the time. (For one fixed true effect sitting on a boundary no
    prediction from one execution can be right: such a verdict replicates half the time.)"""
    rng = np.random.default_rng(7)
    n, tau, sigma, sesoi = 10, 0.02, 0.03, 0.01
    agree, predicted = [], []
    for _ in range(300):
        mu = rng.normal(rng.uniform(-0.04, 0.08), tau, n)
        first, second = mu + rng.normal(0, sigma, n), mu + rng.normal(0, sigma, n)
        c = stats.compare(first, np.zeros(n), sesoi)
        agree.append(c.verdict == stats.compare(second, np.zeros(n), sesoi).verdict)
        predicted.append(stats.with_stability([c], [sigma * math.sqrt(2)], draws=1000)[0].survival)
    agree, predicted = np.array(agree), np.array(predicted)
    assert 0.5 < agree.mean() < 0.95  # a setting where the question is open
    assert predicted.mean() == pytest.approx(agree.mean(), abs=0.06)
    assert agree[predicted >= stats.STABLE].mean() >= 0.9 and (predicted >= stats.STABLE).sum() >= 50


def test_a_borrowed_spread_larger_than_the_data_allow_is_capped():
    """The training noise is part of a claim's own spread: a borrowed re-execution spread above sqrt(2) sd is
    capped there, so an undetermined verdict near significance, whose pair of arms re-executes as calmly as
    its seeds vary, is not called stable because a noisier pair's spread would widen its interval."""
    rng = np.random.default_rng(11)
    near = stats.compare(0.006 + rng.normal(0, 0.013, 10), np.zeros(10), 0.01, "near significance")
    assert near.verdict == "undetermined" and near.ci_low < 0 < near.ci_high and near.mean > 0
    [borrowed] = stats.with_stability([near], [0.075])  # a noisier pair's spread, five times its own sd
    [capped] = stats.with_stability([near], [math.sqrt(2) * near.sd])
    assert borrowed.survival == capped.survival and not borrowed.stable
    [uncapped_would_say] = stats.with_stability([near], [0.5 * math.sqrt(2) * near.sd])
    assert uncapped_would_say.survival != borrowed.survival  # below the cap the spread still matters


def test_fragile_verdicts_say_so_in_words():
    c = stats.Comparison("c", 10, 0.05, 0.02, 0.03, 0.07, 0.01, 0.001, 0.9, "better", None, survival=0.62)
    assert c.stable is False
    assert c.verdict_text() == "better by 0.050 [0.030, 0.070], fragile: a re-execution would keep it with probability 0.62"
    u = stats.Comparison("c", 10, 0.01, 0.02, -0.01, 0.03, 0.01, 0.5, 0.5, "undetermined", 40, survival=0.95)
    assert u.verdict_text() == "undetermined: +0.010 [-0.010, +0.030]; about 40 seeds would decide, stable"


def test_constant_differences_and_too_few_seeds():
    assert stats.compare([0.8, 0.8], [0.7, 0.7], sesoi=0.01).verdict == "better"
    assert stats.compare([0.7, 0.7], [0.7, 0.7], sesoi=0.01).verdict == "equivalent"
    assert stats.compare([0.9], [0.1], sesoi=0.01).verdict == "undetermined"
    with pytest.raises(ValueError, match="smallest effect of interest must be > 0"):
        stats.compare([1, 2], [1, 2], sesoi=0)


def test_series_are_paired_by_seed():
    treatment = pd.Series([0.9, 0.8, 0.7], index=[2, 0, 1])
    control = pd.Series([0.75, 0.6, 0.8], index=[0, 1, 2])  # seed 0: 0.8 - 0.75, seed 1: 0.7 - 0.6, seed 2: 0.9 - 0.8
    assert stats.compare(treatment, control, 0.01).mean == pytest.approx((0.05 + 0.1 + 0.1) / 3)
    with pytest.raises(ValueError, match="different seeds"):
        stats.compare(treatment, control.drop(2), 0.01)


def test_holm_by_hand():
    # three claims with p = 0.01, 0.04, 0.03: Holm multiplies the sorted values by 3, 2, 1 and keeps them
    # monotone: 0.03, 0.06, 0.06 (in sorted order 0.01, 0.03, 0.04)
    comparisons = [stats.Comparison(f"c{i}", 10, 0.05, 0.02, 0.01, 0.09, 0.01, p, 0.9, "better", None)
                   for i, p in enumerate([0.01, 0.04, 0.03])]
    corrected = stats.holm(comparisons)
    assert [c.p_difference for c in corrected] == pytest.approx([0.03, 0.06, 0.06])
    assert [c.verdict for c in corrected] == ["better", "undetermined", "undetermined"]
    assert all(c.corrected for c in corrected)


def test_correlation_interval_is_scipys_and_dependent_points_warn():
    x, y = [1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]
    r = stats.correlation(x, y)
    expected = scipy_stats.pearsonr(x, y)
    assert r.r == pytest.approx(expected.statistic)
    z, half = math.atanh(r.r), 1.959963984540054 / math.sqrt(6 - 3)  # Fisher's interval by hand
    assert (r.ci_low, r.ci_high) == pytest.approx((math.tanh(z - half), math.tanh(z + half)), rel=1e-6)
    with pytest.warns(stats.DependentPointsWarning, match="not independent"):
        stats.correlation(x, y, groups=[0, 0, 1, 1, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats.correlation(x, y, groups=[0, 1, 2, 3, 4, 5])


def test_correlation_per_group():
    frame = pd.DataFrame({"seed": [0] * 4 + [1] * 4 + [2] * 4, "x": [1, 2, 3, 4] * 3,
                          "y": [1, 2, 3, 5, 2, 1, 4, 3, 1, 3, 2, 4]})
    result = stats.correlation_per_group(frame, "x", "y")
    per_seed = [scipy_stats.pearsonr([1, 2, 3, 4], frame.y[frame.seed == s]).statistic for s in range(3)]
    assert list(result.per_group.values()) == pytest.approx(per_seed)
    assert result.r == pytest.approx(math.tanh(np.mean(np.arctanh(per_seed))))
    assert result.ci_low < result.r < result.ci_high and result.n == 3


def test_summarise_by_hand():
    summary = stats.summarise([0.9, 0.8, 0.85])
    assert summary["mean"] == pytest.approx(0.85) and summary["std"] == pytest.approx(0.05)
    half = 4.302652729749464 * 0.05 / math.sqrt(3)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((0.85 - half, 0.85 + half))
    assert readouts.mean_std([0.9, None, 0.8, float("nan"), 0.85]) == (summary["mean"], summary["std"])
    assert readouts.fmt([0.9, 0.8, 0.85]) == "0.850 ± 0.050" and readouts.fmt([0.5]) == "0.500 ± 0.000"


def test_book_judge_corrects_the_family_and_summary_adds_the_oracle(capsys):
    from mmlesson.page import judge, summary

    rng = np.random.default_rng(0)
    control = rng.normal(0.7, 0.01, 10)
    raw = [stats.compare(control + 0.02 + rng.normal(0, 0.01, 10), control, 0.01, "a"),
           stats.compare(control + rng.normal(0, 0.01, 10), control, 0.01, "b")]
    corrected = judge(raw)
    assert [c.corrected for c in corrected] == [True, True]
    assert [c.p_difference for c in corrected] == list(stats.holm(raw)[i].p_difference for i in range(2))
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0] == "10 paired seeds per claim, 95% intervals, Holm-corrected over these 2 claims:"
    assert lines[1:] == [f"- {c.claim}: {c.verdict_text()} (smallest effect of interest 0.01)" for c in corrected]
    runs = {"joint": [{"final": {"test": {"acc": a}}} for a in (0.7, 0.8)]}
    table = summary(runs, {"acc": ("test", "acc"), "missing": ("test", "nope")}, oracle_row={"acc": 0.9})
    assert table.loc["joint", "acc"] == "0.750 ± 0.071" and table.loc["joint", "missing"] == "-"
    assert table.loc["oracle (Bayes)", "acc"] == "0.900" and table.loc["oracle (Bayes)", "missing"] == "-"


def test_the_learning_rate_rule_takes_the_best_mean_and_the_smaller_rate_on_a_tie():
    import pandas as pd

    from mmlesson.rates import choose_learning_rates, learning_rate_table

    rows = [("a", 0.02, 0, 0.70), ("a", 0.02, 1, 0.74), ("a", 0.05, 0, 0.73), ("a", 0.05, 1, 0.72),
            ("b", 0.02, 0, 0.60), ("b", 0.02, 1, 0.60), ("b", 0.05, 0, 0.62), ("b", 0.05, 1, 0.58)]
    study = pd.DataFrame(rows, columns=["arm", "lr", "seed", "val acc"])
    # a: means 0.72 vs 0.725 (one seed alone would pick the other rate); b: a tie, the smaller rate
    assert choose_learning_rates(study) == {"a": 0.05, "b": 0.02}
    table = learning_rate_table(study)
    assert table.loc["a", 0.05].endswith("*") and not table.loc["a", 0.02].endswith("*")


def test_the_stored_study_covers_every_arm_rate_and_tuning_seed():
    import pandas as pd

    from mmlesson.arms import STUDY_ARMS
    from mmlesson.rates import (LEARNING_RATES, STUDY_FILE, STUDY_SEEDS, protocol_learning_rates,
                                with_learning_rates)

    study = pd.read_csv(STUDY_FILE)
    assert set(study["arm"]) == set(STUDY_ARMS)
    counts = study.groupby(["arm", "lr"])["seed"].apply(sorted)
    assert all(seeds == list(STUDY_SEEDS) for seeds in counts) and len(counts) == len(STUDY_ARMS) * len(LEARNING_RATES)
    assert study["val acc"].between(0, 1).all()
    rates = protocol_learning_rates()
    assert set(rates) == set(STUDY_ARMS) and set(rates.values()) <= set(LEARNING_RATES)
    arms = with_learning_rates({"joint (concat)": {"method": "joint"}, "other": {"method": "joint"}}, rates)
    assert arms == {"joint (concat)": {"method": "joint", "lr": rates["joint (concat)"]}, "other": {"method": "joint"}}


def test_verdicts_read_as_what_they_mean():
    """A reader takes the words at face value: the size and interval of a difference; an equivalence whose
    difference is significant too is not "no difference"; undetermined says how many seeds would decide; a
    decided verdict near its boundary (not ``clear``) says that float rounding could change it."""
    def comparison(verdict, mean, low, high, p_difference=0.5, needed=None, n=10, p_equivalence=0.001):
        return stats.Comparison("c", n, mean, 0.01, low, high, 0.02, p_difference, p_equivalence, verdict, needed)

    decided = dict(p_difference=0.001, p_equivalence=0.9)  # clear: far from both boundaries
    assert comparison("better", 0.05, 0.03, 0.07, **decided).verdict_text() == "better by 0.050 [0.030, 0.070]"
    assert comparison("worse", -0.05, -0.07, -0.03, **decided).verdict_text() == "worse by 0.050 [0.030, 0.070]"
    assert comparison("better", 0.05, 0.001, 0.099, p_difference=0.04, p_equivalence=0.9).verdict_text() == (
        "better by 0.050 [0.001, 0.099] (near its decision boundary: another float rounding order could change it)")
    assert comparison("equivalent", 0.0, -0.019, 0.019, p_equivalence=0.04).verdict_text().endswith(
        "within ±0.02 (near its decision boundary: another float rounding order could change it)")
    assert comparison("equivalent", 0.004, 0.003, 0.005, p_difference=0.001).verdict_text() == (
        "a real but negligible difference: +0.004 [+0.003, +0.005], within ±0.02")
    assert comparison("equivalent", 0.0, -0.001, 0.001).verdict_text() == (
        "no difference that matters: +0.000 [-0.001, +0.001], within ±0.02")
    assert comparison("undetermined", 0.01, -0.01, 0.03, needed=40).verdict_text() == (
        "undetermined: +0.010 [-0.010, +0.030]; about 40 seeds would decide")
    assert comparison("undetermined", 0.0, -0.1, 0.1, needed=stats.MAX_SEEDS).verdict_text().endswith(
        f"more than {stats.MAX_SEEDS} seeds would decide")
    assert comparison("undetermined", 0.3, float("nan"), float("nan"), n=1).verdict_text() == "undetermined"


def test_pooled_comparisons_by_hand():
    """Two-way model arm + seed: the residual mean square pools every arm's within-seed noise on (a-1)(n-1)
    degrees of freedom; a contrast's standard error is sqrt(2 MSE / n)."""
    values = {"joint": [0.50, 0.60, 0.55, 0.70], "A": [0.58, 0.66, 0.60, 0.79], "B": [0.49, 0.63, 0.54, 0.69]}
    y = np.array([values[arm] for arm in values])  # [arms, seeds]
    residual = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    mse = (residual ** 2).sum() / ((3 - 1) * (4 - 1))
    se, df = math.sqrt(2 * mse / 4), 6
    pooled = {c.claim.split(" minus")[0]: c for c in stats.pooled_comparisons(values, "joint", sesoi=0.02)}
    a = pooled["A"]
    assert a.mean == pytest.approx(np.mean(np.subtract(values["A"], values["joint"])))
    half = scipy_stats.t.ppf(0.975, df) * se
    assert (a.ci_low, a.ci_high) == pytest.approx((a.mean - half, a.mean + half))
    assert a.p_difference == pytest.approx(2 * scipy_stats.t.sf(abs(a.mean) / se, df))
    assert a.p_equivalence == pytest.approx(max(scipy_stats.t.sf((a.mean + 0.02) / se, df),
                                                scipy_stats.t.cdf((a.mean - 0.02) / se, df)))
    assert a.sd == pytest.approx(se * 2) and a.verdict == "better"
    assert pooled["B"].mean == pytest.approx(np.mean(np.subtract(values["B"], values["joint"])))


def test_probability_of_improvement_counts_won_pairs_ties_half_and_brackets_itself():
    treatment, control = [0.5, 0.6, 0.7, 0.55], [0.5, 0.52, 0.4]
    # pairs won: 0.5 ties 0.5 (1/2), beats 0.4; 0.6, 0.7 and 0.55 beat all three: (1.5 + 9) / 12
    p, low, high = stats.probability_of_improvement(treatment, control)
    assert p == pytest.approx(10.5 / 12)
    assert p == pytest.approx(scipy_stats.mannwhitneyu(treatment, control).statistic / 12)
    assert low <= p <= high <= 1.0
    assert stats.probability_of_improvement([1, 2, 3], [1, 2, 3])[0] == 0.5
    assert stats.probability_of_improvement([0.9] * 5, [0.1] * 5) == (1.0, 1.0, 1.0)


def test_probability_of_improvement_over_tasks_is_the_mean_of_the_tasks_with_a_stratified_interval():
    first, second = ([0.5, 0.6, 0.7, 0.55], [0.5, 0.52, 0.4]), ([1.0, 2.0], [3.0, 4.0])
    p, low, high = stats.probability_of_improvement_over_tasks([first, second])
    assert p == pytest.approx((10.5 / 12 + 0.0) / 2)
    # the second task never wins in any resample (stratified: its runs stay in it), so the mean is at most 1/2
    assert low <= p <= high <= 0.5
