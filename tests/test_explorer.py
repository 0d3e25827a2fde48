import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mmlesson import explorer as explorer_module  # noqa: E402
from mmlesson.errors import ConfigError  # noqa: E402
from mmlesson.explorer import explorer, plot_explorer, train_briefly  # noqa: E402

TINY = dict(epochs=1, train_size=60)  # seconds, not a measurement


def numbers(result):
    return {key: value for key, value in result.items() if key != "seconds"}


@pytest.fixture(scope="module")
def tiny_result():
    return train_briefly({"visual_strength": 1.2}, **TINY)


def test_result_holds_the_three_models_accuracies(tiny_result):
    assert set(tiny_result["joint"]) == {"fused", "audio branch", "visual branch"}
    for value in (*tiny_result["joint"].values(), tiny_result["audio only"], tiny_result["visual only"]):
        assert 0.0 <= value <= 1.0
    assert tiny_result["classes"] == 6 and tiny_result["knobs"] == {"visual_strength": 1.2}
    assert tiny_result["epochs"] == 1 and tiny_result["train_size"] == 60 and tiny_result["seconds"] > 0


def test_the_same_seed_gives_the_same_numbers(tiny_result):
    assert numbers(train_briefly({"visual_strength": 1.2}, **TINY)) == numbers(tiny_result)


def test_an_unknown_knob_is_one_line_naming_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        train_briefly({"visual_strenght": 1.0}, **TINY)
    message = str(error.value)
    assert "\n" not in message and "visual_strenght" in message
    assert "visual_strength" in message and "audio_noise" in message


def test_nothing_is_written_to_the_directory_or_the_run_store(tmp_path, monkeypatch):
    here, store = tmp_path / "here", tmp_path / "store"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("MMLESSON_RESULTS", str(store))
    train_briefly({}, **TINY)
    assert list(here.iterdir()) == [] and not store.exists()


def test_the_plot_shows_branch_beside_alone_fused_and_chance(tiny_result):
    fig = plot_explorer(tiny_result)
    ax = fig.axes[0]
    heights = sorted(round(bar.get_height(), 6) for bar in ax.patches)
    expected = [tiny_result["joint"]["audio branch"], tiny_result["joint"]["visual branch"], tiny_result["audio only"],
                tiny_result["visual only"], tiny_result["joint"]["fused"]]
    assert heights == sorted(round(value, 6) for value in expected)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["chance (1/6)", "joint model, its branch", "trained alone", "joint model, fused"]
    chance = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(1 / 6)
    assert ax.get_ylabel() == "test accuracy (fraction)" and ax.get_xlabel() == "modality"
    assert "visual_strength=1.2" in ax.get_title() and "1 epochs" in ax.get_title()
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["audio", "visual", "fused"]
    plt.close(fig)


def test_the_plot_draws_into_a_given_axis(tiny_result):
    fig, ax = plt.subplots()
    assert plot_explorer(tiny_result, ax=ax) is fig and len(ax.patches) == 5
    plt.close(fig)


def test_the_train_button_shows_training_then_a_figure(monkeypatch):
    import ipywidgets as widgets

    box = explorer(**TINY)
    assert isinstance(box, widgets.VBox)
    sliders = {child.description: child for child in box.children if isinstance(child, widgets.FloatSlider)}
    assert set(sliders) == {"audio_strength", "visual_strength", "audio_noise", "visual_noise"}
    assert sliders["visual_strength"].value == pytest.approx(0.55)  # the severe regime's values
    assert sliders["audio_strength"].value == pytest.approx(4.0)
    button = next(child for child in box.children if isinstance(child, widgets.Button))
    output = next(child for child in box.children if isinstance(child, widgets.Output))
    seen = []

    def recording(knobs, **options):  # what the reader sees while training runs
        seen.append((knobs, options, [o.get("text") for o in output.outputs], button.disabled))
        return train_briefly(knobs, **options)

    monkeypatch.setattr(explorer_module, "train_briefly", recording)
    sliders["visual_strength"].value = 1.0
    button.click()
    knobs, options, shown, disabled = seen[0]
    assert knobs["visual_strength"] == pytest.approx(1.0) and options["epochs"] == 1
    assert shown == ["training...\n"] and disabled
    assert any("image/png" in o.get("data", {}) for o in output.outputs) and not button.disabled
    assert output.outputs[0]["text"].startswith("trained in")


def test_an_error_in_training_is_shown_in_the_output(monkeypatch):
    import ipywidgets as widgets

    def failing(knobs, **options):
        raise ConfigError("bad knob; fix it")

    monkeypatch.setattr(explorer_module, "train_briefly", failing)
    box = explorer(**TINY)
    next(child for child in box.children if isinstance(child, widgets.Button)).click()
    output = next(child for child in box.children if isinstance(child, widgets.Output))
    assert output.outputs[0]["text"] == "error: bad knob; fix it\n"
