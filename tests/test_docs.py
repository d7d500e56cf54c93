"""README.md stays short, the docs' links resolve, and their result tables are the
ones their JSON renders (``benchmarks/render_docs.py``), not hand edits."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, code marks and punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_readme_is_a_short_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"


def test_slug_matches_github():
    assert _slug("GPU backend (optional)") == "gpu-backend-optional"
    assert _slug("`ffeat compare`") == "ffeat-compare"
    assert _slug('Faces cut out (`faces="auto"`)') == "faces-cut-out-facesauto"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_fences_are_closed(page):
    fences = re.findall(r"^```", page.read_text(encoding="utf-8"), flags=re.M)
    assert len(fences) % 2 == 0, f"{page.name}: a code block is not closed"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_generated_tables_match_their_json():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "render_docs.py"), "--check"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def _render_docs():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import render_docs
    finally:
        sys.path.pop(0)
    return render_docs


def test_a_hand_edited_table_is_caught():
    render_docs = _render_docs()
    page = (ROOT / "docs" / "measurements.md").read_text(encoding="utf-8")
    assert "<!-- table:accuracy begin -->" in page
    assert render_docs.update(page)[1] == []
    edited = page.replace("| **0.934** |", "| **0.950** |", 1)
    assert edited != page
    new, changed = render_docs.update(edited)
    assert changed == ["accuracy"] and new == page


def test_every_table_is_placed_once():
    render_docs = _render_docs()
    placed = [m["name"] for p in render_docs.pages()
              for m in render_docs.MARKER.finditer(p.read_text(encoding="utf-8"))
              if m["end"] == "begin"]
    assert sorted(placed) == sorted(render_docs.TABLES)


def test_marker_errors_are_refused():
    render_docs = _render_docs()
    for text in ("<!-- table:nosuch begin -->\n<!-- table:nosuch end -->",
                 "<!-- table:accuracy begin -->\n",
                 "<!-- table:accuracy end -->\n"):
        with pytest.raises(render_docs.MarkerError):
            render_docs.update(text)
