"""Nothing a reader cannot open: the product cites papers by title, authors, venue and year and its own
appendix for what released code does, never the development team's private notes, and no stored
output shows a path of the machine that executed it."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted([*(ROOT / "mmlesson").rglob("*.py"), *(ROOT / "mmlesson").rglob("*.toml"),
                  *(ROOT / "book").glob("*.py"), *(ROOT / "book").glob("*.md"), *(ROOT / "book").glob("*.ipynb"),
                  ROOT / "README.md", ROOT / "_config.yml", ROOT / "_toc.yml"])
PRIVATE = re.compile(r"\.\./shared|shared/seeds|REFERENCE_CODE|DESIGN\.md|reference notes")
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:root|home/\w+|tmp|work|private/var|Users/\w+)/")


def test_the_check_sees_the_shipped_files():
    assert len(SHIPPED) > 60 and ROOT / "book" / "released_code.md" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_source_and_no_machine_path(path):
    text = path.read_text(errors="replace")
    private = [m.group(0) for m in PRIVATE.finditer(text)]
    assert not private, f"{path.relative_to(ROOT)} cites {private[:3]}: cite the paper or book/released_code.md"
    paths = [text[max(0, m.start() - 20):m.end() + 20] for m in MACHINE_PATH.finditer(text)]
    assert not paths, f"{path.relative_to(ROOT)} shows a machine path: {paths[:3]}"


def test_the_patterns_catch_what_they_are_for():
    assert PRIVATE.search("see ../shared/seeds/004") and PRIVATE.search("as REFERENCE_CODE.md says")
    assert MACHINE_PATH.search('"/tmp/pytest-of-root/store/run"') and MACHINE_PATH.search("/home/alice/x")
    assert not MACHINE_PATH.search("roots=\"/scratch/data/cremad\"") and not MACHINE_PATH.search("a/tmp/b")
