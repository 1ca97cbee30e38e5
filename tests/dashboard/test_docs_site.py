"""The documentation site's configuration reference in a real browser (issue 34): at 1280
pixels its table fits the page (no Description column scrolled out of sight) and no value
breaks inside a word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]

# Each code value in the table: does it sit on one line (a break inside it would make two)?
BROKEN_VALUES = """() => [...document.querySelectorAll("article table td code")]
  .filter((code) => code.getClientRects().length > 1)
  .filter((code) => !/\\s/.test(code.textContent.trim()))
  .map((code) => code.textContent)"""


def test_configuration_reference_fits_1280_pixels(tmp_path: Path, page: Page) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                   cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto((site / "reference" / "configuration" / "index.html").as_uri())
    table = page.locator("article table").first
    fits = table.evaluate("t => { const box = t.closest('.md-typeset__table') || t.parentElement;"
                          " return [t.scrollWidth, box.clientWidth]; }")
    assert fits[0] <= fits[1], f"the table is {fits[0]} px wide in {fits[1]} px"
    last = table.locator("tr").nth(1).locator("td").last
    right = last.evaluate("td => td.getBoundingClientRect().right")
    assert right <= 1280, f"the Description column ends at {right} px"
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    broken = page.evaluate(BROKEN_VALUES)
    assert not broken, f"values broken inside a word: {broken[:5]}"
