"""The files every project has: a licence, a citation file, a changelog, and a README whose first
screen tells a newcomer what to run. Fast: reads files only."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_licence_is_the_mit_text():
    text = (ROOT / "LICENSE").read_text()
    assert "MIT License" in text
    assert "Permission is hereby granted" in text
    assert PYPROJECT["license"]["text"] == "MIT"


def test_citation_file_matches_pyproject():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert isinstance(cff, dict)
    assert str(cff["cff-version"]) == "1.2.0"
    assert str(cff["version"]) == PYPROJECT["version"]
    assert cff["license"] == PYPROJECT["license"]["text"]
    assert cff["title"] and cff["authors"] and cff["message"]
    for reference in cff["references"]:
        assert reference["title"] and reference["authors"], reference
        assert reference.get("collection-title") or reference.get("journal") or reference["type"] == "unpublished"


def test_changelog_has_a_section_for_the_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text
    assert re.search(rf"^## \[{re.escape(PYPROJECT['version'])}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M)


def test_readme_first_screen_holds_the_quick_start_and_colab():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    for needed in ("make book", "make test", "Colab"):
        assert needed in first_screen, f"the README's first 40 lines lack {needed!r}"


def test_measured_figures_moved_to_benchmarks_and_linked():
    results = ROOT / "benchmarks" / "RESULTS.md"
    assert results.is_file()
    assert results.read_text().startswith("# Measured figures\n")
    assert "](benchmarks/RESULTS.md)" in (ROOT / "README.md").read_text()
