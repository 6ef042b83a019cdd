"""Shared pytest fixtures: the real data, the demo dataset, a bare MRML scene, the BIDS validator."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from aisweb import browser, close_shared_browser  # noqa: F401  (one Chromium for the session's browser tests)

from aistest import ISLES_SES, ISLES_SUB, REPO

# test the checkout these tests belong to, even when another copy is pip-installed
sys.path.insert(0, str(REPO / "AISAnnotation"))


def _find_shared_data() -> Path | None:
    env = os.environ.get("AIS_TEST_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if (c / "SOURCES.md").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real stroke MRI in ../shared/data (or $AIS_TEST_DATA); skips only when absent."""
    found = _find_shared_data()
    if found is None:
        pytest.skip("real test data not found: set AIS_TEST_DATA or place shared/data beside the checkout")
    return found


@pytest.fixture(scope="session")
def isles_src(shared_data: Path) -> Path:
    return shared_data / "isles22-case0009"


@pytest.fixture(scope="session")
def isles_bids(isles_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ISLES'22 case 0009 imported into a fresh BIDS dataset (read-only for tests)."""
    from AISAnnotationLib.importers import import_isles

    root = tmp_path_factory.mktemp("isles") / "bids"
    import_isles(isles_src, root)
    return root


@pytest.fixture(scope="session")
def isles_case(isles_bids: Path):
    from AISAnnotationLib.case import load_case

    return load_case(isles_bids, ISLES_SUB, ISLES_SES)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset written once per session (copy it before modifying)."""
    from AISAnnotationLib.phantom import write_demo_dataset

    root = tmp_path_factory.mktemp("demo") / "bids"
    write_demo_dataset(root)
    return root


@pytest.fixture
def demo_copy(demo_root: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the demo dataset."""
    dst = tmp_path / "demo"
    shutil.copytree(demo_root, dst)
    return dst


@pytest.fixture
def scene():
    """A bare vtkMRMLScene from PyPI slicer-core, passed explicitly (never a global)."""
    slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install '.[test]')")
    s = slicer.vtkMRMLScene()
    yield s
    s.Clear(1)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Step screenshots and app logs, kept after the run in Testing/artifacts/web (ignored by git)."""
    out = Path(__file__).resolve().parent / "artifacts" / "web"
    out.mkdir(parents=True, exist_ok=True)
    return out



_LAST_BROWSER_TEST: list[str] = []


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list) -> None:
    users = [item.nodeid for item in items if "browser" in getattr(item, "fixturenames", ())]
    _LAST_BROWSER_TEST[:] = users[-1:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield  # the test's fixtures (pages of module fixtures) are torn down first
    if _LAST_BROWSER_TEST and item.nodeid == _LAST_BROWSER_TEST[0]:
        close_shared_browser()  # later tests may run their own asyncio loop in this thread
