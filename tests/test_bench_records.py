"""bench.records: new figures replace a section's old ones, and hand-written notes under them stay."""

from __future__ import annotations

from bench.records import record_section


def test_new_figures_replace_the_old_and_keep_the_notes_and_the_other_sections(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## A\n\nold A\n\n### Notes\n\n- why A is slow\n\n## B\n\nfigures B\n")
    record_section("## A\n\nnew A\n", heading="## A", path=doc)
    assert doc.read_text() == "# Benchmarks\n\n## A\n\nnew A\n\n### Notes\n\n- why A is slow\n\n## B\n\nfigures B\n"
    record_section("## B\n\nnew B\n", heading="## B", path=doc)
    assert doc.read_text().endswith("- why A is slow\n\n## B\n\nnew B\n")
    record_section("## C\n\nC\n", heading="## C", path=doc)
    assert doc.read_text().endswith("## B\n\nnew B\n\n## C\n\nC\n")
