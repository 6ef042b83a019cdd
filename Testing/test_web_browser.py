"""The browser client end to end in headless Chromium (Debian's), one app process per user."""

from __future__ import annotations

from pathlib import Path

import pytest
from aisweb import app_process, browser, state, view_pixels, wait_state  # noqa: F401  (browser: fixture)

pytest.importorskip("trame_slicer")
pytest.importorskip("playwright")


@pytest.fixture(scope="module")
def web_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh demo dataset with the demo raters (one per test module: the tests submit into it)."""
    from AISAnnotationMRML.workspace import demo_dataset

    return Path(demo_dataset(tmp_path_factory.mktemp("web") / "demo"))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Step screenshots and app logs (kept under pytest's tmp dir)."""
    return tmp_path_factory.mktemp("web-artifacts")


def test_case_opens_in_linked_layout(web_demo: Path, browser, artifacts: Path) -> None:  # noqa: F811
    with app_process(web_demo, "r01", "annotator", artifacts) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url)
        page.locator("#queue tr.ais-row", has_text="sub-01_ses-01").click()
        wait_state(page, "s('case_id') === 'sub-01_ses-01'")
        page.wait_for_function("() => document.querySelectorAll('#views img').length === 4 && "
                               "Array.from(document.querySelectorAll('#views img')).every(i => i.naturalWidth > 50)")
        page.locator("#fit").click()
        page.wait_for_timeout(800)
        page.screenshot(path=str(artifacts / "open.png"))
        assert state(page, "error") == ""
        for i in range(4):  # DWI, ADC, eADC, FLAIR: every view shows an image, not a blank frame
            px = view_pixels(page, i).astype(float)
            assert px.std() > 20, f"view {i} is blank"
        page.close()
