"""The schematic figures of ``mmlesson.plots``: what they say, and that they leave pyplot as they found it."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mmlesson.plots import draw_ccat_pipeline, draw_concat_fusion  # noqa: E402


def texts(artist) -> str:
    """Every text of a figure or axes (titles, labels, box contents, legend entries), one per line."""
    return "\n".join(t.get_text() for t in artist.findobj(matplotlib.text.Text))


def legend_labels(fig) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


@pytest.fixture(autouse=True)
def close_figures():
    plt.close("all")
    yield
    plt.close("all")


def test_concat_fusion_shows_the_shared_residual_reaching_both_encoders():
    fig = draw_concat_fusion()
    assert isinstance(fig, matplotlib.figure.Figure) and plt.get_fignums() == [fig.number]
    text = texts(fig)
    for label in ("$z_a$", "$z_v$", "\\theta_a", "\\theta_v", "W = [W_a,\\ W_v]", "f = W_a z_a",
                  "p - e_y", "$W_a^\\top (p - e_y)$", "$W_v^\\top (p - e_y)$",
                  "(\\partial z_a / \\partial \\theta_a)^\\top W_a^\\top (p - e_y)", "softmax", "label $y$"):
        assert label in text, label
    assert legend_labels(fig) == ["forward pass", "gradient (backward pass)"]


def test_concat_fusion_draws_gradients_dashed_in_their_own_colour():
    fig = draw_concat_fusion()
    styles = {(line.get_color(), line.get_linestyle()) for line in fig.axes[0].lines}
    assert styles == {("black", "-"), ("tab:red", "--")}


def test_concat_fusion_gradient_ends_on_each_encoder():
    ax = draw_concat_fusion().axes[0]
    ends = [line.get_xydata()[-1] for line in ax.lines if line.get_linestyle() == "--"]
    for name in ("audio encoder", "visual encoder"):
        x, y = next(t.get_position() for t in ax.texts if t.get_text().startswith(name))
        assert any(abs(end_x - x) < 0.01 and abs(end_y - y) < 0.6 for end_x, end_y in ends), name


def test_concat_fusion_draws_into_a_given_axes():
    fig, axes = plt.subplots(1, 2)
    assert draw_concat_fusion(axes[1]) is fig
    assert plt.get_fignums() == [fig.number]
    assert axes[1].get_legend() is not None and not axes[0].has_data()
    assert "p - e_y" in texts(fig)


def test_ccat_pipeline_shows_both_stages():
    fig = draw_ccat_pipeline()
    assert isinstance(fig, matplotlib.figure.Figure) and plt.get_fignums() == [fig.number]
    left, right = fig.axes
    assert "Stage 1" in left.get_title() and "Stage 2" in right.get_title()
    stage1, stage2 = texts(left), texts(right)
    assert "cross-" in stage1 and "\\mathcal{L}_{cls} + \\lambda" in stage1 and "equal contributions" in stage1
    for label in ("frozen", "LoRA$_a$", "LoRA$_v$", "step 1: audio", "step 2: visual", "Sec", "c_m < \\beta"):
        assert label in stage2, label
    assert "LoRA" not in stage1 and "frozen" not in stage1
    assert legend_labels(fig) == ["trained", "frozen", "audio step", "visual step", "secondary update (Sec)"]


def test_paired_differences_are_drawn_per_seed_with_the_interval_and_the_sesoi_band():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from mmlesson.plots import plot_paired_differences
    from mmlesson.stats import compare

    treatment, control = np.array([0.62, 0.60, 0.65, 0.61]), np.array([0.50, 0.52, 0.51, 0.49])
    c = compare(treatment, control, 0.02, "gain")
    fig, ax = plt.subplots()
    plot_paired_differences(ax, {"gain": treatment - control}, {"gain": c})
    points = ax.collections[1].get_offsets()  # [0] is the SESOI band, [1] the seeds
    assert np.allclose(sorted(points[:, 0]), sorted(treatment - control))
    band = ax.collections[0].get_paths()[0].vertices[:, 0]
    assert band.min() == -0.02 and band.max() == 0.02
    markers = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o"]
    assert markers == [pytest.approx(c.mean)]  # the mean's marker; its caps and bar span the 95% interval
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["gain"]
    plt.close(fig)


def test_no_figure_in_the_book_asks_for_text_smaller_than_the_book_style_allows():
    """The rendered-book test turns MIN_FONT_PT into pixels on the page; that holds only if no figure sets a
    smaller size than the style: every literal font size in the chapters and the package is at least
    MIN_FONT_PT, none is a relative size below 'medium', and every size in BOOK_STYLE is at least MIN_FONT_PT."""
    import re
    from pathlib import Path

    from mmlesson.plots import BOOK_STYLE, MIN_FONT_PT

    root = Path(__file__).resolve().parents[1]
    sources = [*root.glob("book/*.py"), *root.glob("mmlesson/**/*.py")]
    small = []
    for path in sources:
        text = path.read_text()
        for match in re.finditer(r"(?:fontsize|labelsize|title_fontsize)\s*=\s*([0-9.]+)", text):
            if float(match.group(1)) < MIN_FONT_PT:
                small.append(f"{path.name}: {match.group(0)}")
        small += [f"{path.name}: {m}" for m in re.findall(r"(?:fontsize|labelsize)\s*=\s*[\"'](?:x+-)?small[\"']", text)]
    assert not small, small
    sizes = {key: value for key, value in BOOK_STYLE.items() if "size" in key}
    assert sizes and all(value >= MIN_FONT_PT for value in sizes.values()), sizes


def test_the_chapters_setup_puts_the_book_style_in_force():
    from mmlesson.chapter import setup_session
    from mmlesson.plots import BOOK_STYLE

    plt.rcParams.update({"font.size": 6, "figure.dpi": 72})
    setup_session("cpu")
    for key, value in BOOK_STYLE.items():
        assert plt.rcParams[key] == value, key
