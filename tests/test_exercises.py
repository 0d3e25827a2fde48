"""The chapters' exercise checker: a right answer passes, a wrong one is shown its first wrong case."""
import math

import torch

from mmlesson.exercises import check


def reference(x, y):
    return torch.tensor([x + y, x * y])


CASES = [(1.0, 2.0), (3.0, -1.5)]


def test_a_right_answer_passes(capsys):
    def mine(x, y):
        return [x + y, x * y]

    assert check(mine, reference, CASES)
    assert capsys.readouterr().out == "Correct: mine agrees with the package on all 2 cases.\n"


def test_a_wrong_answer_is_shown_its_first_wrong_case(capsys):
    def mine(x, y):
        return [x + y, x * y + (1 if x > 2 else 0)]

    assert not check(mine, reference, CASES)
    assert capsys.readouterr().out == "Not yet: for case 2 (3, -1.5) mine gives -3.5 where -4.5 is expected (entry (1,))\n"


def test_an_unwritten_answer_and_a_failing_one_get_one_line(capsys):
    def stub(x, y):
        return None

    def broken(x, y):
        return math.log(-1)

    def wrong_shape(x, y):
        return [x]

    assert not check(stub, reference, CASES) and not check(broken, reference, CASES)
    assert not check(wrong_shape, reference, CASES)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["Not yet: stub returns None; write it in the cell above, run that cell, then this one.",
                     "Not yet: broken(1, 2) raised ValueError: math domain error",
                     "Not yet: for case 1 (1, 2) wrong_shape returns shape (1,), expected (2,)"]


def test_tolerance_is_absolute_or_relative(capsys):
    assert check(lambda x: x + 1e-9, lambda x: x, [(torch.zeros(3),)])
    assert not check(lambda x: x + 1e-3, lambda x: x, [(torch.zeros(3),)])
    assert "an array of shape (3,)" in capsys.readouterr().out


# Each chapter's code exercise, solved: the solution the exercise asks for agrees with the reference its
# hidden cell checks against, and a near miss does not (so the chapter's check can fail).
def test_chapter_1_shared_residual():
    import torch.nn.functional as F

    def solution(logits, labels):
        return (logits.softmax(dim=1) - F.one_hot(labels, logits.shape[1])) / len(labels)

    def autograd_residual(logits, labels):
        logits = logits.clone().requires_grad_(True)
        return torch.autograd.grad(F.cross_entropy(logits, labels), logits)[0]

    generator = torch.Generator().manual_seed(1)
    cases = [(torch.randn(b, 6, generator=generator), torch.randint(0, 6, (b,), generator=generator)) for b in (1, 4, 32)]
    assert check(solution, autograd_residual, cases)
    assert not check(lambda logits, labels: solution(logits, labels) * len(labels), autograd_residual, cases)


def test_chapter_2_jump_coefficient():
    from mmlesson.methods.ogm_ge import coefficient

    def solution(rho, alpha):
        return 1 - math.tanh(alpha * rho) if rho > 1 else 1.0

    cases = [(0.5, 0.8), (1.0, 0.8), (1.0001, 0.8), (1.3, 0.8), (2.0, 0.1), (3.0, 2.6)]
    assert check(solution, lambda rho, alpha: coefficient(rho, alpha, "jump"), cases)
    assert not check(lambda rho, alpha: 1 - math.tanh(alpha * (rho - 1)) if rho > 1 else 1.0,
                     lambda rho, alpha: coefficient(rho, alpha, "jump"), cases)


def test_chapter_3_weight_with_covariance():
    import numpy as np

    def searched_weight(v0, v1, c):
        w = np.linspace(0, 1, 100_001)
        return w[np.argmin(w ** 2 * v0 + (1 - w) ** 2 * v1 + 2 * w * (1 - w) * c)]

    cases = [(0.04, 0.09, 0.0), (0.04, 0.09, 0.01), (1.0, 0.5, -0.2), (0.2, 0.2, 0.1)]
    assert check(lambda v0, v1, c: (v1 - c) / (v0 + v1 - 2 * c), searched_weight, cases, tolerance=1e-4)
    assert not check(lambda v0, v1, c: v1 / (v0 + v1), searched_weight, cases, tolerance=1e-4)


def test_chapter_4_projector_update():
    from mmlesson.methods.mla import update_projector

    def solution(P, r, alpha):
        k = P @ r
        updated = P - torch.outer(k, k) / (alpha + r @ k)
        return updated / updated.norm()

    generator = torch.Generator().manual_seed(4)
    matrix = torch.randn(5, 5, generator=generator)
    cases = [(torch.eye(4), torch.randn(4, generator=generator), 0.1),
             (matrix @ matrix.T, torch.randn(5, generator=generator), 0.05), (torch.eye(3), torch.zeros(3), 0.01)]
    assert check(solution, update_projector, cases, tolerance=1e-5)
    assert not check(lambda P, r, alpha: P - torch.outer(P @ r, P @ r) / (alpha + r @ P @ r), update_projector, cases,
                     tolerance=1e-5)


def test_chapter_5_visual_weight_share():
    from mmlesson.analysis.decision import weight_statistics

    def package_share(W_audio, W_visual):
        rows = weight_statistics({"audio": W_audio, "visual": W_visual})
        return [v / (a + v) for a, v in zip(rows["audio"]["per_class_l1"], rows["visual"]["per_class_l1"])]

    def solution(W_audio, W_visual):
        a, v = W_audio.abs().mean(dim=1), W_visual.abs().mean(dim=1)
        return v / (a + v)

    generator = torch.Generator().manual_seed(5)
    cases = [(torch.randn(6, d_a, generator=generator), torch.randn(6, d_v, generator=generator))
             for d_a, d_v in ((64, 64), (32, 128), (8, 2))]
    assert check(solution, package_share, cases)
    sums = lambda W_audio, W_visual: W_visual.abs().sum(1) / (W_audio.abs().sum(1) + W_visual.abs().sum(1))  # noqa: E731
    assert not check(sums, package_share, cases)


def test_chapter_6_paired_interval():
    import numpy as np
    from scipy import stats as scipy_stats

    from mmlesson.stats import compare

    def package_interval(treatment, control):
        comparison = compare(treatment, control, sesoi=0.01)
        return [comparison.ci_low, comparison.ci_high]

    def solution(treatment, control):
        d = np.subtract(treatment, control)
        half = scipy_stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
        return [d.mean() - half, d.mean() + half]

    rng = np.random.default_rng(6)
    cases = [(rng.normal(0.6, 0.05, n), rng.normal(0.55, 0.05, n)) for n in (3, 10, 30)]
    assert check(solution, package_interval, cases)
    normal = lambda t, c: [np.mean(np.subtract(t, c)) + s * 1.96 * np.std(np.subtract(t, c), ddof=1) / math.sqrt(len(t))  # noqa: E731
                           for s in (-1, 1)]
    assert not check(normal, package_interval, cases)
