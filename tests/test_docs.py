"""The docs' tables of measurements are what benchmarks/tables.py renders from docs/data/, and
the docs' relative links resolve."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def _tables():
    spec = importlib.util.spec_from_file_location("tables", ROOT / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_tables_equal_their_rendering(page):
    text = page.read_text()
    assert _tables().update(text, DOCS / "data") == text, (
        f"{page.name} differs from its JSON: run python benchmarks/tables.py")


def test_every_measurement_file_is_shown_once_with_machine_and_date():
    names = [m.group("name") for page in PAGES for m in _tables().MARKER.finditer(page.read_text())]
    files = sorted(p.stem for p in (DOCS / "data").glob("*.json"))
    assert sorted(names) == files
    for name in files:
        data = json.loads((DOCS / "data" / f"{name}.json").read_text())
        assert data["machine"] and re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["date"]), name


def test_rerun_benchmark_json_updates_the_page(tmp_path):
    """A benchmark's own JSON (``cpu``, no ``date``) replaces the figures and names the CPU."""
    tables = _tables()
    docs = tmp_path / "docs"
    shutil.copytree(DOCS / "data", docs / "data")
    shutil.copy(DOCS / "performance.md", docs)
    suite = json.loads((docs / "data" / "suite.json").read_text())
    fresh = {"cpu": "Test CPU 9000", "cores": 4, "results": suite["results"]}
    fresh["results"][0]["pipeline_images_per_s"] = 123456.7
    (docs / "data" / "suite.json").write_text(json.dumps(fresh))

    assert tables.main(["--docs", str(docs), "--check"]) == 1
    assert tables.main(["--docs", str(docs)]) == 0
    page = (docs / "performance.md").read_text()
    block = page.split("<!-- table:suite -->")[1].split("<!-- /table -->")[0]
    assert "123,457" in block and "37,195" not in block
    assert "Measured on Test CPU 9000, 4 cores," in block
    assert tables.main(["--docs", str(docs), "--check"]) == 0


def test_number_keeps_the_figures_precision():
    number = _tables().number
    assert [number(v) for v in (2921, 108.4, 4.96, 4.2, 0.0245, 0.7, None)] == [
        "2,921", "108.4", "4.96", "4.2", "0.0245", "0.7", "-"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if "://" in target:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path) if path else page
        assert resolved.exists(), f"{page.name} links to a missing {path}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                     for h in headings}
            assert anchor in slugs, f"{page.name}: no heading for {target}"
