"""Write a benchmark's or a simulation's figures into its marked section of a document in docs/."""
from __future__ import annotations

import re
from pathlib import Path

from gar_analysis.config import DOCS_DIR
from gar_analysis.io import atomic_write_text


def write_section(doc: str, name: str, markdown: str) -> Path:
    """Replace the section between ``<!-- name:start -->`` and ``<!-- name:end -->`` of ``docs/<doc>``.

    The section is appended when the markers are absent; the rest of the document is kept. A section
    that starts with a level-1 heading has all its headings moved down one level, under the document's title.
    """
    if markdown.startswith("# "):
        markdown = re.sub(r"^(#+) ", r"#\1 ", markdown, flags=re.M)
    path = DOCS_DIR / doc
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if start not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    return atomic_write_text(path, f"{head}{start}\n{markdown.rstrip()}\n{end}{tail}")
