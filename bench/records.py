"""Writing a benchmark's figures into docs/benchmarks.md, one section per benchmark."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


NOTES = "### Notes"


def record_section(section: str, *, heading: str, path: Path = DOCS) -> None:
    """Replace the section that starts with `heading` (or append it), leaving the others as they are.

    A `### Notes` part written by hand under the old figures is kept under the new ones."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(heading + "\n")
    if start < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    following = text.find("\n## ", start + len(heading))
    old = text[start:following + 1] if following >= 0 else text[start:]
    notes = old.find("\n" + NOTES)  # "### Notes" or "### Notes (by hand)"
    if notes >= 0 and NOTES not in section:
        section = section.rstrip("\n") + "\n" + old[notes:].rstrip("\n") + "\n"
    rest = text[following + 1:] if following >= 0 else ""
    path.write_text(text[:start] + section + ("\n" + rest if rest else ""))
