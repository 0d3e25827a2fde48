"""Adding a method is one file and one registration: a toy method written to a temporary module, imported,
appears in ``mmlesson train --help``, trains, passes every check of the contract suite, and is planned,
trained and tabulated by ``mmlesson replicate``. The method is the README's example ("Adding a method"), read
from the README itself, so the example cannot drift from what works."""
import importlib
import sys
from pathlib import Path

import pytest

from mmlesson.cli import main
from mmlesson.methods import METHODS, option_names

from . import test_method_contract as contract
from .conftest import tiny_grid_text

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The Python block of the README's section "Adding a method": the toy method this test adds."""
    section = README.read_text().split("## Adding a method", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


GRID = tiny_grid_text("toy-grid", """
[arms.joint]
method = "joint"
[arms.toy]
method = "toy"
""", title="the toy method beside joint training")


@pytest.fixture
def toy_method(tmp_path, monkeypatch):
    (tmp_path / "toy_method.py").write_text(readme_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_method")
    yield module.Toy
    METHODS.pop("toy")
    sys.modules.pop("toy_method")


def test_a_method_in_its_own_file_is_found_everywhere(toy_method, config_of, tiny_dataset, tmp_path, capsys):
    assert METHODS["toy"] is toy_method and option_names("toy") == ["toy_temperature"]
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert "toy" in help_text and "--toy-temperature" in help_text and "options of --method toy" in help_text
    for check in contract.CHECKS:  # the contract suite, every check
        with pytest.MonkeyPatch.context() as patch:  # undone here, before the toy method is unregistered
            extra = {"monkeypatch": patch} if "monkeypatch" in check.__code__.co_varnames else {}
            check("toy", config_of, tiny_dataset, tmp_path / check.__name__, **extra)
    grid_file = tmp_path / "toy-grid.toml"
    grid_file.write_text(GRID)
    results = tmp_path / "results"
    assert main(["replicate", str(grid_file), "--results", str(results), "--workers", "1", "--progress", "off"]) == 0
    table = capsys.readouterr().out
    assert "| toy " in table and "| joint " in table  # a row of the grid's table
    assert main(["train", "--method", "toy", "--toy-temperature", "0", "--epochs", "1"]) == 2
    assert "--toy-temperature must be > 0" in capsys.readouterr().err


config_of, encoder_runs = contract.config_of, contract.encoder_runs  # the contract suite's fixtures
