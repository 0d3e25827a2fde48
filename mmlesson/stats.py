"""Statistics behind every verdict of the book (scipy, statsmodels and pandas do the arithmetic).

A claim compares two methods over the same seeds (paired): ``compare(treatment, control, sesoi)``
gives the mean paired difference with its t-based 95% confidence interval and one of four verdicts,
given a smallest effect of interest ``sesoi`` stated before looking at the data:

* ``better`` / ``worse``: the difference is significantly above / below 0 (paired t-test) and not
  shown to be smaller than ``sesoi``;
* ``equivalent``: two one-sided tests (TOST) show the difference lies within ``[-sesoi, +sesoi]``;
* ``undetermined``: neither, with the number of seeds whose interval, at the observed spread, is
  narrow enough to settle it whatever the difference (``seeds_needed``: planned from ``sesoi``).

``holm(comparisons)`` corrects the p-values of one chapter's claims for multiplicity (Holm's step-down
method, per family: the difference tests, the equivalence tests) and re-derives the verdicts.
``correlation`` adds scipy's confidence interval to Pearson's r and warns when the points are not
independent (several per seed); ``correlation_per_group`` computes r within each seed and summarises
those with a t interval on Fisher's z. ``summarise`` gives mean, standard deviation and 95% CI.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

ALPHA = 0.05
MAX_SEEDS = 10_000
VERDICTS = ("better", "equivalent", "worse", "undetermined")
STABLE = 0.9  # a verdict is stable when a re-execution is predicted to keep it with at least this probability


class DependentPointsWarning(UserWarning):
    """A correlation was computed over points that are not independent (several per seed)."""


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of ``treatment - control`` over ``n`` seeds (see the module docstring)."""

    claim: str
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    sesoi: float
    p_difference: float
    p_equivalence: float
    verdict: str
    seeds_needed: int | None
    corrected: bool = False  # p-values Holm-adjusted within a family of claims
    survival: float | None = None  # probability that a re-execution keeps the verdict (``with_stability``)

    @property
    def stable(self) -> bool | None:
        """Whether a re-execution (another float order: another GPU, thread count or library version) is
        predicted to keep the verdict with probability at least ``STABLE``; None where the spread of a
        re-execution was not measured."""
        return None if self.survival is None else self.survival >= STABLE

    @property
    def clear(self) -> bool:
        """Whether the verdict clears its decision boundary by a margin: the deciding p-value below
        ``ALPHA / 20`` and the other test's above ``10 ALPHA`` (an undetermined verdict: both above
        ``10 ALPHA``). A verdict that is not clear may change when float rounding changes (another CPU,
        another thread count); the book's tests compare only clear verdicts."""
        low, high = ALPHA / 20, 10 * ALPHA
        if self.verdict in ("better", "worse"):
            return self.p_difference < low and self.p_equivalence > high
        if self.verdict == "equivalent":
            return self.p_equivalence < low
        return self.p_difference > high and self.p_equivalence > high

    def verdict_text(self, digits: int = 3) -> str:
        """The verdict in words a reader takes at face value, with the difference and its 95% interval:
        ``better by 0.153 [0.113, 0.194]`` (``worse by``: the size of the loss and its interval); an
        equivalence whose difference is significant too is ``a real but negligible difference`` (not
        "no difference"); undetermined says how many seeds would decide, and where its (uncorrected) interval
        excludes zero, that Holm's correction is what leaves it undecided. A decided verdict that is not
        ``clear`` says so: another float rounding order could change it."""
        interval = f"[{self.ci_low:+.{digits}f}, {self.ci_high:+.{digits}f}]"
        if self.survival is not None:  # the measured spread of a re-execution decides the label
            fragile = (", stable" if self.stable else
                       f", fragile: a re-execution would keep it with probability {self.survival:.2f}")
        else:
            fragile = "" if self.clear else " (near its decision boundary: another float rounding order could change it)"
        if self.verdict in ("better", "worse"):  # the size of the difference, with its interval
            low, high = (self.ci_low, self.ci_high) if self.verdict == "better" else (-self.ci_high, -self.ci_low)
            return f"{self.verdict} by {abs(self.mean):.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]{fragile}"
        if self.verdict == "equivalent":
            within = f"within ±{self.sesoi:.{digits}g}"
            if self.p_difference < ALPHA:
                return f"a real but negligible difference: {self.mean:+.{digits}f} {interval}, {within}{fragile}"
            return f"no difference that matters: {self.mean:+.{digits}f} {interval}, {within}{fragile}"
        found = f"undetermined: {self.mean:+.{digits}f} {interval}" if self.n >= 2 else "undetermined"
        if self.n >= 2 and self.corrected and (self.ci_low > 0 or self.ci_high < 0):  # the interval is not Holm's
            found = f"{found}, not significant after Holm's correction (the interval is uncorrected)"
        if self.seeds_needed is not None:
            more = f"more than {MAX_SEEDS}" if self.seeds_needed >= MAX_SEEDS else f"about {self.seeds_needed}"
            found = f"{found}; {more} seeds would decide"
        return found + (fragile if self.survival is not None else "")


def paired_values(treatment, control) -> tuple[np.ndarray, np.ndarray]:
    """Two aligned float arrays; pandas Series are aligned on their index (the seed) first."""
    if hasattr(treatment, "loc") and hasattr(control, "loc"):  # pandas Series
        common = treatment.index.intersection(control.index)
        if len(common) != len(treatment) or len(common) != len(control):
            raise ValueError(f"paired comparison: the two sides have different seeds "
                             f"({sorted(treatment.index)} vs {sorted(control.index)})")
        treatment, control = treatment.loc[common], control.loc[common]
    treatment, control = np.asarray(treatment, dtype=float), np.asarray(control, dtype=float)
    if treatment.shape != control.shape or treatment.ndim != 1:
        raise ValueError(f"paired comparison needs two equally long 1-D sequences, got {treatment.shape} and "
                         f"{control.shape}")
    return treatment, control


def decide(mean: float, p_difference: float, p_equivalence: float, alpha: float = ALPHA) -> str:
    if p_equivalence < alpha:
        return "equivalent"
    if p_difference < alpha:
        return "better" if mean > 0 else "worse"
    return "undetermined"


def half_width(sd: float, seeds, alpha: float = ALPHA):
    """Half-width of the t-based ``1 - alpha`` interval of a mean of ``seeds`` paired differences of spread ``sd``."""
    return scipy_stats.t.ppf(1 - alpha / 2, np.asarray(seeds) - 1) * sd / np.sqrt(seeds)


def seeds_for_half_width(sd: float, target: float, alpha: float = ALPHA) -> int | None:
    """The fewest seeds (at most ``MAX_SEEDS``) whose interval at spread ``sd`` has a half-width of at most ``target``."""
    if not (math.isfinite(sd) and sd > 0):
        return None
    n = np.arange(2, MAX_SEEDS + 1)
    enough = np.flatnonzero(half_width(sd, n, alpha) <= target)
    return int(n[enough[0]]) if len(enough) else MAX_SEEDS


def seeds_needed(sd: float, sesoi: float, alpha: float = ALPHA) -> int | None:
    """Seeds at which, at the spread ``sd`` of the paired differences, the ``1 - alpha`` interval's
    half-width falls to half the smallest effect of interest: an interval that narrow decides the claim
    whatever the difference turns out to be (it excludes 0, or lies within ``[-sesoi, +sesoi]``, or both).
    Planned from ``sesoi``, never from the observed difference (that would be post-hoc power)."""
    return seeds_for_half_width(sd, sesoi / 2, alpha)


def compare(treatment, control, sesoi: float, claim: str = "", alpha: float = ALPHA) -> Comparison:
    """Paired comparison of ``treatment - control`` (same seeds) with smallest effect of interest ``sesoi``."""
    if not sesoi > 0:
        raise ValueError(f"the smallest effect of interest must be > 0, got {sesoi!r}")
    treatment, control = paired_values(treatment, control)
    differences = treatment - control
    n = len(differences)
    mean = float(differences.mean()) if n else float("nan")
    sd = float(differences.std(ddof=1)) if n > 1 else float("nan")
    if n < 2:
        return Comparison(claim, n, mean, sd, float("nan"), float("nan"), sesoi, 1.0, 1.0, "undetermined", None)
    if sd == 0.0:  # every seed gives the same difference: the t statistics are undefined, the sign is not
        p_difference = 1.0 if mean == 0 else 0.0
        p_equivalence = 0.0 if abs(mean) < sesoi else 1.0
        return Comparison(claim, n, mean, sd, mean, mean, sesoi, p_difference, p_equivalence,
                          decide(mean, p_difference, p_equivalence, alpha), None)
    test = scipy_stats.ttest_rel(treatment, control)
    interval = test.confidence_interval(1 - alpha)
    from statsmodels.stats.weightstats import ttost_paired  # statsmodels: see holm

    p_equivalence = float(ttost_paired(treatment, control, -sesoi, sesoi)[0])
    verdict = decide(mean, float(test.pvalue), p_equivalence, alpha)
    needed = seeds_needed(sd, sesoi, alpha) if verdict == "undetermined" else None
    return Comparison(claim, n, mean, sd, float(interval.low), float(interval.high), sesoi, float(test.pvalue),
                      p_equivalence, verdict, needed)


def holm(comparisons: list[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """Holm-adjust the difference p-values and the equivalence p-values of a family of claims (one
    chapter's), and re-derive each verdict from the adjusted values."""
    # statsmodels takes most of a second to import, and every command that reads a run's numbers imports this
    # module: it is imported where a verdict is computed (here, compare, pooled_comparisons)
    from statsmodels.stats.multitest import multipletests

    if not comparisons:
        return []
    adjusted = {}
    for name in ("p_difference", "p_equivalence"):
        values = np.array([getattr(c, name) for c in comparisons], dtype=float)
        adjusted[name] = multipletests(values, alpha=alpha, method="holm")[1]
    corrected = []
    for i, c in enumerate(comparisons):
        p_difference, p_equivalence = float(adjusted["p_difference"][i]), float(adjusted["p_equivalence"][i])
        verdict = decide(c.mean, p_difference, p_equivalence, alpha) if c.n >= 2 else "undetermined"
        needed = seeds_needed(c.sd, c.sesoi, alpha / len(comparisons)) if verdict == "undetermined" else None
        corrected.append(replace(c, p_difference=p_difference, p_equivalence=p_equivalence, verdict=verdict,
                                 seeds_needed=needed, corrected=True))
    return corrected


def pooled_comparisons(values: dict, control: str, sesoi: float, alpha: float = ALPHA) -> list[Comparison]:
    """Each arm of ``values`` (``{arm: values per seed}``, the same seeds in the same order) minus ``control``,
    with the noise pooled over every arm of the seed-blocked design: the two-way model ``value ~ arm + seed``
    (statsmodels OLS), whose residual mean square estimates each run's within-seed noise on ``(a - 1)(n - 1)``
    degrees of freedom instead of ``n - 1`` per pair. Honest where the arms' noise is alike (compare the
    per-pair spreads); each contrast has standard error ``sqrt(2 MSE / n)``, its t interval and p-value, and
    TOST on the same error. ``sd`` is the per-seed spread that error stands for (``se sqrt(n)``)."""
    import statsmodels.formula.api as smf  # statsmodels: see holm

    arms = list(values)
    n = len(values[control])
    frame = pd.DataFrame([{"value": float(v), "arm": f"a{arms.index(arm)}", "seed": f"s{i}"}
                          for arm in arms for i, v in enumerate(values[arm])])
    model = smf.ols("value ~ C(arm) + C(seed)", data=frame).fit()
    df = float(model.df_resid)
    comparisons = []
    for arm in arms:
        if arm == control:
            continue
        contrast = np.zeros(len(model.params))
        names = list(model.params.index)
        for name, sign in ((f"C(arm)[T.a{arms.index(arm)}]", 1.0), (f"C(arm)[T.a{arms.index(control)}]", -1.0)):
            if name in names:  # the reference arm has no coefficient of its own
                contrast[names.index(name)] = sign
        test = model.t_test(contrast)
        mean, se = float(np.squeeze(test.effect)), float(np.squeeze(test.sd))
        low, high = (float(v) for v in np.squeeze(test.conf_int(alpha)))
        p_difference = float(np.squeeze(test.pvalue))
        p_equivalence = float(max(scipy_stats.t.sf((mean + sesoi) / se, df), scipy_stats.t.cdf((mean - sesoi) / se, df)))
        verdict = decide(mean, p_difference, p_equivalence, alpha)
        sd = se * math.sqrt(n)
        comparisons.append(Comparison(f"{arm} minus {control} (pooled)", n, mean, sd, low, high, sesoi, p_difference,
                                      p_equivalence, verdict, seeds_needed(sd, sesoi, alpha) if verdict == "undetermined"
                                      else None))
    return comparisons


def holm_adjust(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of each row of ``p`` [draws, claims] (``multipletests``, vectorised)."""
    claims = p.shape[1]
    order = np.argsort(p, axis=1)
    ranked = np.take_along_axis(p, order, axis=1) * (claims - np.arange(claims))
    ranked = np.minimum(np.maximum.accumulate(ranked, axis=1), 1.0)
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, ranked, axis=1)
    return adjusted


def with_stability(comparisons: list[Comparison], rerun_sd, draws: int = 4000, seed: int = 0,
                   alpha: float = ALPHA) -> list[Comparison]:
    """``comparisons`` (one family, as ``holm`` or ``compare`` left them) with each verdict's ``survival``:
    the probability that re-executing every run of the family on the same seeds keeps it. ``rerun_sd[i]``
    (None: not measured) is the standard deviation of the change a re-execution makes to one seed's paired
    difference of claim ``i``: the treatment's and the control's own re-execution spreads added in
    quadrature, measured by retraining the same seeds under another float order.

    The model (normal, random effects): seed ``i``'s difference is ``d_i = mu_i + eta_i``, ``mu_i`` what
    the seed's data and initialisation fix (spread ``tau``), ``eta_i`` the training noise a re-execution
    draws anew (variance ``sigma^2 = rerun_sd^2 / 2``). A re-execution keeps the ``mu_i``: its mean is the
    observed one plus ``N(0, rerun_sd^2 / n)``; given the data, ``mu_i`` is known up to shrinkage ``rho =
    tau^2 / (tau^2 + sigma^2)``, so its sum of squares is ``sigma^2 (1 + rho)`` times a noncentral
    chi-square (``n - 1`` degrees of freedom, noncentrality ``rho^2 (n - 1) sd^2 / (sigma^2 (1 + rho))``),
    whose mean is the observed sum of squares. Drawn exactly from the summary (``draws`` times, fixed
    ``seed``) and judged by the same rule (Holm over the family when the comparisons were corrected).

    The training noise is part of the observed spread (``sd^2 = tau^2 + sigma^2``), so a spread larger than
    ``sqrt(2) sd`` contradicts the claim's own data: it is capped there. Without the cap, a spread borrowed
    from a noisier pair of arms would widen the re-executed interval and call an undetermined verdict
    stable that a real re-execution, as calm as the data say, can decide."""
    rng = np.random.default_rng(seed)
    judged = [j for j, c in enumerate(comparisons) if c.n >= 2 and rerun_sd[j] is not None]
    if not judged:
        return list(comparisons)
    p_difference = np.ones((draws, len(comparisons)))
    p_equivalence = np.ones((draws, len(comparisons)))
    means = np.zeros((draws, len(comparisons)))
    for j in judged:
        c = comparisons[j]
        spread = min(float(rerun_sd[j]), math.sqrt(2) * c.sd)  # sigma^2 <= sd^2: the data bound the noise
        if spread == 0:  # nothing moves: the observed statistics, every draw
            means[:, j], p_difference[:, j], p_equivalence[:, j] = c.mean, c.p_difference, c.p_equivalence
            continue
        df, sigma2 = c.n - 1, spread ** 2 / 2
        tau2 = max(c.sd ** 2 - sigma2, 0.0)
        rho = tau2 / (tau2 + sigma2)
        means[:, j] = c.mean + rng.normal(0.0, spread / math.sqrt(c.n), draws)
        scale = sigma2 * (1 + rho)
        squares = scale * rng.noncentral_chisquare(df, rho ** 2 * df * c.sd ** 2 / scale, draws)
        se = np.sqrt(squares / df) / math.sqrt(c.n)
        p_difference[:, j] = 2 * scipy_stats.t.sf(np.abs(means[:, j]) / se, df)
        p_equivalence[:, j] = np.maximum(scipy_stats.t.sf((means[:, j] + c.sesoi) / se, df),
                                         scipy_stats.t.cdf((means[:, j] - c.sesoi) / se, df))
    if any(c.corrected for c in comparisons):
        p_difference, p_equivalence = holm_adjust(p_difference), holm_adjust(p_equivalence)
    verdicts = np.where(p_equivalence < alpha, "equivalent",
                        np.where(p_difference < alpha, np.where(means > 0, "better", "worse"), "undetermined"))
    return [replace(c, survival=float((verdicts[:, j] == c.verdict).mean())) if j in judged else c
            for j, c in enumerate(comparisons)]


def verdict_lines(comparisons: list[Comparison]) -> str:
    """One line per claim, ``verdict: <word> (<label>) | <claim>``: the form the book's checked cells print.
    The label is ``stable`` or ``fragile`` where the re-execution spread was measured (``with_stability``),
    else ``clear`` or ``near its boundary`` (``Comparison.clear``); tests/nbval_tolerance.py compares a word
    only where both executions call it stable, or both clear."""
    def label(c):
        if c.survival is not None:
            return "stable" if c.stable else "fragile"
        return "clear" if c.clear else "near its boundary"

    return "\n".join(f"verdict: {c.verdict} ({label(c)}) | {c.claim}" for c in comparisons)


@dataclass(frozen=True)
class Correlation:
    r: float
    ci_low: float
    ci_high: float
    n: int
    p: float
    per_group: dict | None = None  # correlation_per_group: r of each group

    def evidence(self) -> str:
        unit = f"{self.n} seeds (r within each)" if self.per_group is not None else f"{self.n} points"
        return f"r = {self.r:+.2f} [{self.ci_low:+.2f}, {self.ci_high:+.2f}] over {unit}"


def correlation(x, y, groups=None, alpha: float = ALPHA) -> Correlation:
    """Pearson's r with scipy's (Fisher) confidence interval. ``groups`` (e.g. the seed of each
    point): a warning if some group holds several points, since the interval assumes independence."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if groups is not None and len(set(groups)) < len(list(groups)):
        warnings.warn(f"correlation over {len(x)} points from {len(set(groups))} groups: the points are not "
                      f"independent and the interval is too narrow; use correlation_per_group",
                      DependentPointsWarning, stacklevel=2)
    result = scipy_stats.pearsonr(x, y)
    interval = result.confidence_interval(1 - alpha)
    return Correlation(float(result.statistic), float(interval.low), float(interval.high), len(x), float(result.pvalue))


def correlation_per_group(frame, x: str, y: str, group: str = "seed", alpha: float = ALPHA) -> Correlation:
    """Pearson's r within each group (seed), then their mean on Fisher's z with a t interval across
    groups: the right interval when each seed contributes several dependent points."""
    per_group = {key: float(scipy_stats.pearsonr(part[x], part[y]).statistic) for key, part in frame.groupby(group)}
    z = np.arctanh(np.clip(np.array(list(per_group.values())), -0.999999, 0.999999))
    if len(z) < 2:
        raise ValueError("correlation_per_group needs at least two groups")
    test = scipy_stats.ttest_1samp(z, 0.0)
    interval = test.confidence_interval(1 - alpha)
    return Correlation(float(np.tanh(z.mean())), float(np.tanh(interval.low)), float(np.tanh(interval.high)),
                       len(z), float(test.pvalue), per_group)


def summarise(values, alpha: float = ALPHA) -> dict:
    """``mean``, ``std`` (sample), ``ci_low`` / ``ci_high`` (t-based) and ``n`` of ``values``."""
    values = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    std = float(values.std(ddof=1)) if n > 1 else float("nan")
    if n > 1 and std > 0:
        low, high = scipy_stats.t.interval(1 - alpha, n - 1, loc=mean, scale=scipy_stats.sem(values))
    else:
        low = high = mean
    return {"mean": mean, "std": std, "ci_low": float(low), "ci_high": float(high), "n": n}


def probability_of_improvement(treatment, control, draws: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """The probability that a run of ``treatment`` beats a run of ``control`` (Agarwal et al., "Deep
    Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021, as the ``rliable`` package
    computes it for one task): the share of (treatment, control) pairs of runs the treatment wins, ties counting
    one half, i.e. the Mann-Whitney U statistic over ``n_t * n_c``; with a 95% percentile interval from
    ``draws`` bootstrap resamples of each arm's runs (scipy). Returns ``(probability, low, high)``."""
    return probability_of_improvement_over_tasks([(treatment, control)], draws, seed)


def probability_of_improvement_over_tasks(tasks, draws: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``probability_of_improvement`` averaged over tasks (``tasks``: one ``(treatment runs, control runs)`` pair
    per task, e.g. per regime), with rliable's stratified bootstrap: each task's runs of each arm are resampled
    within that task. Returns ``(probability, low, high)``."""
    def one_task(x, y):
        wins = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
        ties = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
        return wins + 0.5 * ties

    def statistic(*samples, axis=-1):
        return sum(one_task(samples[i], samples[i + 1]) for i in range(0, len(samples), 2)) / (len(samples) // 2)

    samples = [np.asarray(runs, dtype=float) for task in tasks for runs in task]
    result = scipy_stats.bootstrap(samples, statistic, paired=False, vectorized=True, n_resamples=draws,
                                   method="percentile", random_state=np.random.default_rng(seed))
    return float(statistic(*samples)), float(result.confidence_interval.low), float(result.confidence_interval.high)
