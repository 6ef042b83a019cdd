"""``ais-annotate snapshot`` / ``render_case_snapshot`` on case 0009: four labelled panels with the lesion outline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from aistest import ISLES_SES, ISLES_SUB, REPO

pytest.importorskip("slicer", reason="slicer-core is not installed")

from AISAnnotationLib import bids  # noqa: E402
from AISAnnotationLib.case import load_case  # noqa: E402
from AISAnnotationLib.errors import InputError  # noqa: E402
from AISAnnotationLib.masks import read_mask  # noqa: E402
from AISAnnotationMRML.snapshot import render_case_snapshot  # noqa: E402

LABELS = ["DWI b1000", "ADC", "eADC", "FLAIR"]


def _png(path):
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    return (img[..., :3] * 255).round().astype(int)


def _red(rgb):
    return (rgb[..., 0] > 200) & (rgb[..., 1] < 40) & (rgb[..., 2] < 40)


@pytest.fixture(scope="module")
def expert_mask(isles_bids, isles_case):
    return read_mask(bids.lesion_mask_path(isles_bids, ISLES_SUB, ISLES_SES, desc=bids.REFERENCE_DESC),
                     isles_case.reference)


@pytest.fixture(scope="module")
def snapshot(isles_case, expert_mask, tmp_path_factory):
    out = tmp_path_factory.mktemp("snap") / "case0009.png"
    return render_case_snapshot(isles_case, expert_mask, out), out


def test_snapshot_has_four_labelled_panels_with_outline(snapshot, expert_mask):
    info, out = snapshot
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert info["slice_index"] == int(np.argmax(expert_mask.sum(axis=(0, 1))))
    assert info["source"] == "largest lesion area"
    rgb = _png(out)
    assert rgb.shape[:2] == tuple(info["size"][::-1])
    panels = list(info["panels"].values())
    assert [p["label"] for p in panels] == LABELS
    for p in panels:
        x0, y0, x1, y1 = p["box"]
        crop = rgb[y0:y1, x0:x1]
        assert not p["missing"]
        assert p["nonzero_fraction"] > 0.1, p["label"]
        brightness = crop.max(axis=-1)
        assert (brightness > 60).mean() > 0.1, p["label"]  # an image, not an empty black square
        assert _red(crop).sum() >= 20, p["label"]  # the lesion outline is drawn in every panel
        assert p["outline_pixels"] >= 20
        title = rgb[max(0, y0 - 25):y0 - 2, x0:x1]
        assert (title.max(axis=-1) < 100).sum() > 20, p["label"]  # dark title text above the panel
        # all four panels show one plane: same centre and offset as the DWI panel
        assert p["centre_ras"] == pytest.approx(panels[0]["centre_ras"], abs=1e-3)
        assert p["slice_offset"] == pytest.approx(panels[0]["slice_offset"], abs=1e-6)
    # outside the lesion slice range there is no outline
    empty_k = np.nonzero(expert_mask.sum(axis=(0, 1)) == 0)[0]
    assert len(empty_k)


def test_snapshot_at_a_slice_without_lesion_has_no_outline(isles_case, expert_mask, tmp_path):
    area = expert_mask.sum(axis=(0, 1))
    lesion_k = np.nonzero(area)[0]
    k = int(max(np.nonzero(area == 0)[0], key=lambda kk: np.abs(lesion_k - kk).min()))  # far from any lesion
    z = float((isles_case.reference.affine @ [56, 56, k, 1])[2])
    info = render_case_snapshot(isles_case, expert_mask, tmp_path / "z.png", slice=z)
    assert info["source"] == "requested RAS S"
    assert all(p["outline_pixels"] == 0 for p in info["panels"].values())
    assert _red(_png(tmp_path / "z.png")).sum() == 0


@pytest.fixture(scope="module")
def no_flair_root(isles_bids, tmp_path_factory):
    root = tmp_path_factory.mktemp("snap_noflair") / "bids"
    shutil.copytree(isles_bids, root)
    for p in [p for p in root.rglob("*FLAIR*") if p.is_file()]:
        p.unlink()
    return root


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    return subprocess.run([sys.executable, "-m", "AISAnnotationLib", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_snapshot_missing_flair_panel_is_labelled(no_flair_root, tmp_path):
    out = tmp_path / "noflair.png"
    proc = _cli("snapshot", no_flair_root, "--subject", ISLES_SUB, "--session", ISLES_SES, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    import json

    info = json.loads(proc.stdout)
    assert info["mask"].endswith("desc-reference_mask.nii.gz")  # default: the expert mask
    flair = info["panels"]["AIS-FLAIR"]
    assert flair["missing"] and flair["label"] == "FLAIR (missing)" and flair["nonzero_fraction"] == 0
    assert not info["panels"]["AIS-eADC"]["missing"]  # derived from ADC
    rgb = _png(out)
    x0, y0, x1, y1 = flair["box"]
    assert (rgb[y0:y1, x0:x1].max(axis=-1) > 200).sum() > 30  # the "not available" text is written
    assert _red(rgb[y0:y1, x0:x1]).sum() == 0


def test_cli_snapshot_errors_are_clear(isles_bids, tmp_path):
    proc = _cli("snapshot", isles_bids, "--subject", ISLES_SUB, "--session", ISLES_SES,
                "--out", tmp_path / "a.png", "--slice", "900")
    assert proc.returncode == 2 and "outside the DWI volume" in proc.stderr
    proc = _cli("snapshot", isles_bids, "--subject", ISLES_SUB, "--session", ISLES_SES,
                "--out", tmp_path / "a.png", "--slice", "middle")
    assert proc.returncode == 2 and "'auto' or a RAS S coordinate" in proc.stderr
    assert not (tmp_path / "a.png").exists()


def test_cli_snapshot_without_slicer_core_says_so(demo_root, tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "slicer.py").write_text("raise ImportError('No module named slicer (blocked for this test)')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), str(REPO / "AISAnnotation")]))
    proc = subprocess.run([sys.executable, "-m", "AISAnnotationLib", "snapshot", str(demo_root), "--subject", "01",
                           "--session", "01", "--out", str(tmp_path / "x.png")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "needs the slicer-core package" in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_demo_sub03_derived_adc_snapshot(demo_root, tmp_path):
    case = load_case(demo_root, "03", "01")
    mask = read_mask(bids.lesion_mask_path(demo_root, "03", "01", desc=bids.REFERENCE_DESC), case.reference)
    info = render_case_snapshot(case, mask, tmp_path / "d.png")
    assert {"adc", "eadc"} <= set(case.derived)
    assert [p["label"] for p in info["panels"].values()] == LABELS
    assert all(p["outline_pixels"] > 0 and not p["missing"] for p in info["panels"].values())


def test_snapshot_outlines_two_annotators_in_two_colours(isles_case, expert_mask, tmp_path):
    from scipy import ndimage

    b = ndimage.binary_dilation(expert_mask, iterations=2)
    info = render_case_snapshot(isles_case, {"A": expert_mask, "B": b}, tmp_path / "ab.png")
    assert info["outline_colors"] == {"A": [1.0, 0.0, 0.0], "B": [0.0, 1.0, 1.0]}
    rgb = _png(tmp_path / "ab.png")
    cyan = (rgb[..., 0] < 40) & (rgb[..., 1] > 200) & (rgb[..., 2] > 200)
    for p in info["panels"].values():
        x0, y0, x1, y1 = p["box"]
        assert _red(rgb[y0:y1, x0:x1]).sum() >= 20 and cyan[y0:y1, x0:x1].sum() >= 20, p["label"]
        assert p["outline_pixels_by_mask"]["B"] > p["outline_pixels_by_mask"]["A"] > 0  # B encloses A
    with pytest.raises(InputError, match="not the DWI grid"):
        render_case_snapshot(isles_case, {"A": expert_mask[:-1]}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
