"""Every ```python block in docs/**/*.md runs, so the code in the documentation cannot rot.

Each Markdown file's python blocks run in order, in one fresh module, in a
temporary working directory. Blocks that must not run use another fence
language (``sh``, ``toml``, ``text``). README.md is not collected: its blocks
are fragments (they use names they do not define).
"""

from __future__ import annotations

import re
import sys
import traceback
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(?P<lang>[^\s`]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text, as (line number of the fence, code)."""
    return [
        (text.count("\n", 0, m.start()) + 1, m.group("body"))
        for m in FENCE.finditer(text)
        if m.group("lang") == "python"
    ]


PAGES = sorted(DOCS.rglob("*.md"))


def test_the_docs_exist_and_hold_code():
    assert PAGES, "docs/ has no Markdown pages"
    assert sum(len(python_blocks(p.read_text(encoding="utf-8"))) for p in PAGES) > 0


def test_fences_are_found_and_others_skipped():
    text = "x\n```python\na = 1\n```\n\n```sh\nrm -rf /\n```\n```python\nb = 2\n```\n"
    assert python_blocks(text) == [(2, "a = 1\n"), (9, "b = 2\n")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = str(page.relative_to(ROOT))
    # a real module, so SQLAlchemy can resolve the annotations of models declared on the page
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, (line, code) in enumerate(python_blocks(page.read_text(encoding="utf-8")), start=1):
        try:
            # blank lines in front, so a traceback's line number is the line in the page
            exec(compile("\n" * line + code, name, "exec"), module.__dict__)
        except Exception as exc:
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            pytest.fail(f"{name}, python block {number} (fence at line {line}) failed:\n{detail}", pytrace=False)
