"""Shared by the bench scripts: rewrite one script's section of BENCHMARKS.md in place."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = ("# Benchmarks\n\nSide-by-side measurements of loom against the libraries it replaces. "
          "Benchmarks are never tests; each section is rewritten by the script it names.\n")


def write_section(begin: str, end: str, body: str, path: Path = BENCHMARKS) -> None:
    """Replace the text between the `begin` and `end` markers, or append the section."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    section = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
