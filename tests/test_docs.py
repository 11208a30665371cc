"""The documentation: the API reference is current, and every link and picture exists."""

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


def test_api_reference_is_current():
    gen = runpy.run_path(str(ROOT / "docs" / "gen_api.py"))
    assert (ROOT / "docs" / "api.md").read_text(encoding="utf-8") == gen["render"](), (
        "docs/api.md is out of date: run python docs/gen_api.py"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_images_exist(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_mkdocs_nav_lists_every_page():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*(\S+\.md)", nav))
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}
