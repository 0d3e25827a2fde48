"""Chapter 1's train-per-click explorer: move SynthAV's knobs, train the three baselines for a few
seconds, and see whether the joint model's visual branch still falls short of a visual-only model.

``train_briefly(knobs)`` trains a joint (concatenation) model, an audio-only and a visual-only model
on a small draw of the severe regime (recipe ``synthav-severe-v2``) with ``knobs`` on top, in memory
(nothing is written to the run store or anywhere else); ``plot_explorer`` draws the result and
``explorer()`` puts sliders and a Train button around both (needs ipywidgets, e.g. in Jupyter; without
it, one line says so).
A single seed on a small draw is an illustration, not a measurement: Chapter 1's numbers come
from ten seeds at full size.
"""
from __future__ import annotations

import base64
import io
import time

import matplotlib.pyplot as plt
import torch

from . import data
from .data.synthav import SynthAVConfig
from .engine import fit
from .errors import MMLessonError
from .recipes import RECIPES

RECIPE = "synthav-severe-v2"
ARMS = {"joint": ("joint", dict(fusion="concat")), "audio only": ("unimodal", dict(modality="audio")),
        "visual only": ("unimodal", dict(modality="visual"))}  # arm -> (method, its options)
# The recipe's 1,200 training clips at its calibration rate; 8 epochs (its joint model selects an early epoch
# anyway): a few seconds for all three models on one CPU thread. Smaller validation and test splits than the
# recipe's keep it quick.
TRAIN_SIZE, EPOCHS, VAL_SIZE, TEST_SIZE = 1200, 8, 400, 1000
# The sliders: knob -> (minimum, maximum, step); their defaults are the severe regime's values.
SLIDERS = {"audio_strength": (0.0, 8.0, 0.1), "visual_strength": (0.0, 3.0, 0.05),
           "audio_noise": (0.0, 3.0, 0.1), "visual_noise": (0.0, 3.0, 0.1)}


def train_briefly(knobs: dict | None = None, epochs: int = EPOCHS, seed: int = 0, train_size: int = TRAIN_SIZE) -> dict:
    """Train the joint, audio-only and visual-only models for ``epochs`` on the severe regime's data
    (``train_size`` training clips, ``knobs`` applied on top; an unknown knob is a ``ConfigError``)
    on one CPU thread, in memory; the same ``seed`` gives the same numbers. Returns the test
    accuracies: ``{"joint": {"fused", "audio branch", "visual branch"}, "audio only", "visual only",
    "classes", "knobs", "epochs", "seed", "train_size", "seconds"}``."""
    knobs = dict(knobs or {})
    started = time.perf_counter()
    data_knobs = {"train_size": train_size, "val_size": VAL_SIZE, "test_size": TEST_SIZE, **knobs}
    configs = {arm: RECIPES[RECIPE].config(method, seed=seed, epochs=epochs, data_knobs=data_knobs, probe=False,
                                           device="cpu", threads=1, progress="off", **options)
               for arm, (method, options) in ARMS.items()}
    dataset = data.load("synthav", **configs["joint"]["data_knobs"])  # one draw for all three; checks the knobs
    with torch.random.fork_rng(devices=[]):  # training seeds torch: leave the caller's random state alone
        tests = {arm: fit(dataset=dataset, **config).metrics["final"]["test"] for arm, config in configs.items()}
    joint = tests["joint"]
    return {"joint": {"fused": joint["acc"], "audio branch": joint["branch_acc"]["audio"],
                      "visual branch": joint["branch_acc"]["visual"]},
            "audio only": tests["audio only"]["acc"], "visual only": tests["visual only"]["acc"],
            "classes": dataset.num_classes, "knobs": knobs, "epochs": epochs, "seed": seed, "train_size": train_size,
            "seconds": time.perf_counter() - started}


def plot_explorer(result: dict, ax=None):
    """Bars of ``train_briefly``'s result: per modality, the joint model's branch beside the model
    trained on that modality alone (the gap is the starvation), and the joint model's fused accuracy;
    chance dashed. Returns the Figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    width = 0.38
    joint = [result["joint"]["audio branch"], result["joint"]["visual branch"]]
    alone = [result["audio only"], result["visual only"]]
    bars = [ax.bar([x - width / 2 for x in (0, 1)], joint, width, color="C0", label="joint model, its branch"),
            ax.bar([x + width / 2 for x in (0, 1)], alone, width, color="C1", label="trained alone"),
            ax.bar([2], [result["joint"]["fused"]], width, color="C2", label="joint model, fused")]
    for group in bars:
        ax.bar_label(group, fmt="%.2f", fontsize=9)
    chance = 1 / result["classes"]
    ax.axhline(chance, color="grey", linestyle="--", label=f"chance (1/{result['classes']})")
    ax.set_xticks([0, 1, 2], ["audio", "visual", "fused"])
    ax.set_ylim(0, 1)
    ax.set_xlabel("modality")
    ax.set_ylabel("test accuracy (fraction)")
    knobs = ", ".join(f"{name}={value:g}" if isinstance(value, (int, float)) else f"{name}={value}"
                      for name, value in result["knobs"].items())
    ax.set_title(f"Severe regime{' with ' + knobs if knobs else ' (its own knobs)'}\n{result['epochs']} epochs, "
                 f"{result['train_size']} training clips, seed {result['seed']}", fontsize=10)
    ax.legend(fontsize=9, loc="upper right")
    return ax.figure


def severe_defaults() -> dict:
    """The severe regime's value of each slider's knob (SynthAV's default where the recipe sets none)."""
    knobs = {k: v for k, v in RECIPES[RECIPE].data_knobs.items() if k != "seed"}
    config = SynthAVConfig.from_knobs(**knobs)
    return {name: getattr(config, name) for name in SLIDERS}


def figure_output(fig) -> dict:
    """``fig`` as a PNG display output for an ``ipywidgets.Output`` (works with or without a kernel)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": repr(fig)}}


def text_output(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text + "\n"}


NEEDS_IPYWIDGETS = "the interactive explorer needs ipywidgets: pip install ipywidgets"


def explorer(epochs: int = EPOCHS, seed: int = 0, train_size: int = TRAIN_SIZE):
    """Sliders for the severe regime's main knobs and the epochs, a Train button that runs
    ``train_briefly`` and draws ``plot_explorer`` below it. Returns the widget (a VBox); without
    ipywidgets (not a dependency of the package), prints one line saying how to get it and returns None,
    so the rest of a chapter still runs."""
    try:  # local: ipywidgets is optional (not a dependency), and its absence is one line, at the click
        import ipywidgets as widgets
    except ImportError:
        print(NEEDS_IPYWIDGETS)
        return None

    defaults = severe_defaults()
    sliders = {name: widgets.FloatSlider(value=defaults[name], min=low, max=high, step=step, description=name,
                                         style={"description_width": "initial"}, continuous_update=False)
               for name, (low, high, step) in SLIDERS.items()}
    epoch_slider = widgets.IntSlider(value=epochs, min=1, max=24, description="epochs", continuous_update=False)
    button = widgets.Button(description="Train", button_style="primary", tooltip="train the three models")
    output = widgets.Output()

    def train(_button):
        knobs = {name: slider.value for name, slider in sliders.items()}
        button.disabled = True
        output.outputs = (text_output("training..."),)
        try:
            result = train_briefly(knobs, epochs=epoch_slider.value, seed=seed, train_size=train_size)
        except MMLessonError as error:
            output.outputs = (text_output(f"error: {error}"),)
            return
        finally:
            button.disabled = False
        fig = plot_explorer(result)
        output.outputs = (text_output(f"trained in {result['seconds']:.1f} s"), figure_output(fig))
        plt.close(fig)

    button.on_click(train)
    return widgets.VBox([*sliders.values(), epoch_slider, button, output])
