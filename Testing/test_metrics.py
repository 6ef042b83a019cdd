"""Agreement metrics: exact tables of tiny cases, the real case 0009, references, CLI."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest

from AISAnnotationLib.cli import main
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.image import Image
from AISAnnotationLib.io import read_image, write_nifti
from AISAnnotationLib.metrics import (
    AutoAcceptRule,
    compare_images,
    compare_masks,
    compute_assd,
    compute_count_difference,
    compute_dice,
    compute_hd95,
    compute_lesion_f1,
    compute_lesion_table,
    compute_surface_distances,
    compute_volume_difference,
    count_components,
    disagreement_map,
    label_components,
)
from AISAnnotationLib.metrics.components import label_pair
from aistest import REPO

CASE_MASK = "isles22-case0009/derivatives/sub-strokecase0009/ses-0001/sub-strokecase0009_ses-0001_msk.nii.gz"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_agreement", REPO / "benchmarks" / "bench_agreement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def vol(*voxels, shape=(6, 6, 6)):
    m = np.zeros(shape, dtype=bool)
    for v in voxels:
        m[v] = True
    return m


def box(lo, hi, shape=(8, 8, 8)):
    m = np.zeros(shape, dtype=bool)
    m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return m


E = vol()                                   # empty
V = vol((2, 2, 2))                          # single voxel
W = vol((2, 2, 3))                          # its face neighbour
D = vol((1, 1, 1), (2, 2, 2))               # corner-only contact: one 26-component
T = vol((1, 1, 1), (3, 3, 3))               # two separate voxels
L3 = vol((1, 1, 1), (1, 1, 2), (1, 1, 3))   # a line of 3
P = vol((1, 1, 1))
BR = vol((1, 1, 1), (2, 2, 2), (3, 3, 3))   # a diagonal chain: one lesion bridging both voxels of T
BRX = BR | vol((5, 0, 0))                   # ... plus a separate lesion


# ----------------------------------------------------------------------------- Dice
@pytest.mark.parametrize("a,b,expected", [
    (E, E, 1.0),           # both empty: ISLES empty_value
    (E, V, 0.0),           # one empty
    (V, E, 0.0),
    (V, V, 1.0),
    (V, W, 0.0),           # adjacent, no overlap
    (D, V, 2 * 1 / 3),     # |A∩B| = 1, |A| + |B| = 3
    (L3, vol((1, 1, 2)), 2 * 1 / 4),
    (box((0, 0, 0), (4, 4, 4)), box((2, 0, 0), (6, 4, 4)), 2 * 32 / 128),
])
def test_dice_table(a, b, expected):
    assert compute_dice(a, b) == pytest.approx(expected, abs=1e-15)
    assert compute_dice(b, a) == pytest.approx(expected, abs=1e-15)


# ----------------------------------------------------------------------------- volume
@pytest.mark.parametrize("a,b,spacing,expected_ml", [
    (E, E, (1, 1, 1), 0.0),
    (E, V, (1, 1, 1), 0.001),
    (T, V, (2, 2, 2), 0.008),                # one voxel more at 8 mm³
    (L3, E, (0.5, 0.5, 4.0), 0.003),         # anisotropic: 3 × 1 mm³
    (box((0, 0, 0), (5, 5, 2)), E, (1.2, 1.2, 5.0), 50 * 7.2 / 1000),
])
def test_volume_difference_table(a, b, spacing, expected_ml):
    assert compute_volume_difference(a, b, spacing) == pytest.approx(expected_ml, rel=1e-12, abs=1e-15)


# ----------------------------------------------------------------------------- components / count
@pytest.mark.parametrize("mask,expected", [
    (E, 0), (V, 1), (D, 1),                       # diagonal (corner) contact is one 26-component
    (T, 2), (L3, 1),
    (vol((1, 1, 1), (2, 2, 1)), 1),                # edge contact
    (vol((0, 0, 0), (5, 5, 5)), 2),                # array corners
    (vol((1, 1, 1), (1, 1, 3), (1, 1, 5)), 3),
])
def test_component_count_table(mask, expected):
    assert count_components(mask) == expected


@pytest.mark.parametrize("a,b,expected", [(E, E, 0), (E, T, 2), (T, D, 1), (D, V, 0)])
def test_count_difference_table(a, b, expected):
    assert compute_count_difference(a, b) == expected


def test_labels_numbered_in_scan_order_and_pair_labelling_matches():
    m = vol((0, 4, 0), (3, 0, 0), (5, 5, 5), (3, 1, 1))
    comp = label_components(m)
    assert comp.count == 3
    assert [comp.labels[0, 4, 0], comp.labels[3, 0, 0], comp.labels[5, 5, 5]] == [1, 2, 3]
    assert comp.labels[3, 1, 1] == 2 and comp.sizes.tolist() == [1, 2, 1]
    ca, cb = label_pair(m, T)
    assert np.array_equal(ca.labels, comp.labels) and ca.count == 3
    assert np.array_equal(cb.labels, label_components(T).labels) and cb.count == 2


# ----------------------------------------------------------------------------- lesion F1
@pytest.mark.parametrize("a,b,expected", [
    (E, E, 1.0),                 # both empty: ISLES empty_value
    (E, V, 0.0),                 # only FP (official code: 0 / (0 + 1/2))
    (V, E, 0.0),                 # only FN
    (V, V, 1.0),
    (V, W, 0.0),                 # touching but not overlapping: FN 1, FP 1
    (T, P, 1 / (1 + 1 / 2)),     # TP 1 FN 1
    (P, T, 1 / (1 + 1 / 2)),     # TP 1 FP 1
    (T, V, 0.0),                 # (2,2,2) touches both A voxels diagonally but overlaps none: FN 2, FP 1
    (T, BR, 1.0),                # one B lesion overlapping both A lesions: TP 2
    (T, BRX, 2 / (2 + 1 / 2)),   # TP 2, FP 1
    (BRX, T, 1 / (1 + 1 / 2)),   # reversed: TP 1, FN 1 (lesion F1 is not symmetric, as in the official code)
    (vol((1, 1, 1), (4, 4, 4)), vol((1, 1, 1), (0, 5, 5), (5, 0, 0)), 1 / (1 + 3 / 2)),
])
def test_lesion_f1_table(a, b, expected):
    assert compute_lesion_f1(a, b) == pytest.approx(expected, abs=1e-15)


# ----------------------------------------------------------------------------- surface distances
S = math.sqrt


@pytest.mark.parametrize("a,b,spacing,hd95,assd", [
    (E, E, (1, 1, 1), 0.0, 0.0),
    (E, V, (1, 1, 1), None, None),
    (V, E, (1, 1, 1), None, None),
    (V, V, (1, 1, 1), 0.0, 0.0),
    (V, W, (1, 1, 1), 1.0, 1.0),
    (V, W, (1, 1, 3.5), 3.5, 3.5),                 # k axis spacing counts
    (V, vol((3, 3, 2)), (1, 2, 3), S(1 + 4), S(5)),  # diagonal in i-j: sqrt(1² + 2²)
    (V, vol((5, 2, 2)), (0.5, 1, 1), 1.5, 1.5),
    # A line of 3 along k vs its middle voxel: A→B 1, 0, 1; B→A 0.
    # pooled [1, 0, 1, 0] → 95th percentile 1.0; ASSD = pooled mean 2/4.
    (L3, vol((1, 1, 2)), (1, 1, 1), 1.0, 0.5),
    # two voxels 0 and 4 along i vs one voxel at 1: A→B [1, 3], B→A [1];
    # pooled [1, 3, 1] → percentile 95 = 1 + 0.9 * 2 = 2.8; ASSD 5 / 3
    (vol((0, 2, 2), (4, 2, 2)), vol((1, 2, 2)), (1, 1, 1), 2.8, 5 / 3),
])
def test_surface_distance_table(a, b, spacing, hd95, assd):
    got_h, got_a = compute_hd95(a, b, spacing), compute_assd(a, b, spacing)
    if hd95 is None:
        assert got_h is None and got_a is None
    else:
        assert got_h == pytest.approx(hd95, rel=1e-6, abs=1e-9)
        assert got_a == pytest.approx(assd, rel=1e-6, abs=1e-9)


def test_surface_of_a_solid_cube_excludes_its_interior():
    a = box((1, 1, 1), (6, 6, 6))                      # 5×5×5 cube: 98 surface voxels, 27 interior
    b = box((1, 1, 1), (6, 6, 7))                      # one slab thicker along k: 114 surface voxels
    # A→B: the 9 centre voxels of A's top face are inside B, 1 mm from B's surface; the rest lie on it.
    # B→A: B's 25 top voxels are 1 mm above A's top face; the rest lie on A's surface.
    # pooled: 34 ones among 212 values → 95th percentile 1.0
    assert compute_hd95(a, b) == 1.0
    assert compute_assd(a, b) == pytest.approx(34 / 212, abs=1e-12)
    # k spacing 2 mm: the very centre voxel of A's top face is now 2 mm from B's surface (its
    # neighbours still 1 mm sideways); B's top layer is 2 mm above A.
    assert compute_assd(a, b, (1, 1, 2)) == pytest.approx((8 + 2 + 25 * 2) / 212, abs=1e-12)


@pytest.mark.parametrize("brute_pairs,shell,edt", [(0, 0, 1 << 30), (1 << 19, 0, 1 << 30), (0, 2, 1 << 30),
                                                    (1 << 19, 2, 1 << 30), (0, 1, 1 << 30), (0, 0, 0), (0, 2, 1)])
def test_surface_distances_match_the_medpy_style_reference_on_random_shapes(brute_pairs, shell, edt, monkeypatch):
    """k-d tree / all pairs / box distance map, with and without the shell search first: all equal
    to the EDT reference."""
    from AISAnnotationLib.metrics import surface

    monkeypatch.setattr(surface, "BRUTE_FORCE_PAIRS", brute_pairs)
    monkeypatch.setattr(surface, "SHELL_VOXELS", shell)
    monkeypatch.setattr(surface, "EDT_MIN_POINTS", edt)
    bench = _bench()
    rng = np.random.default_rng(5)
    from scipy import ndimage as ndi
    for _ in range(12):
        shape = tuple(int(x) for x in rng.integers(4, 16, 3))
        spacing = tuple(float(x) for x in rng.uniform(0.4, 5.0, 3))
        a = ndi.binary_dilation(rng.random(shape) < 0.02, iterations=int(rng.integers(0, 3)))
        b = ndi.binary_dilation(rng.random(shape) < 0.02, iterations=int(rng.integers(0, 3)))
        if not a.any() or not b.any():
            continue
        h, s = bench.ref_hd95_assd(a, b, spacing)
        assert compute_hd95(a, b, spacing) == h
        assert compute_assd(a, b, spacing) == s


# ----------------------------------------------------------------------------- lesion table / disagreement
def test_lesion_table_groups_matches_splits_and_unmatched():
    a = vol((1, 1, 1), (1, 1, 2), (4, 4, 4), (0, 5, 5), shape=(6, 6, 6))        # A1 (2 vox), A2, A3
    b = vol((1, 1, 2), (1, 1, 3), (4, 4, 4), (5, 0, 0), shape=(6, 6, 6))        # B1 (2 vox), B2, B3
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-10, 0, 10]
    rows = compute_lesion_table(a, b, spacing=(2, 2, 2), affine=aff)
    # labels follow each lesion's first voxel in C order: A1 = (0,5,5), A2 = (1,1,1)+(1,1,2), A3 = (4,4,4)
    assert [(r.status, r.a_labels, r.b_labels) for r in rows] == [
        ("matched", (2,), (1,)), ("matched", (3,), (2,)), ("only A", (1,), ()), ("only B", (), (3,))]
    m1 = rows[0]
    assert (m1.voxels_a, m1.voxels_b, m1.voxels_both) == (2, 2, 1)
    assert m1.volume_a_ml == pytest.approx(0.016) and m1.dice == pytest.approx(0.5)
    assert m1.centroid_ijk == pytest.approx((1, 1, 2))               # of the union (1,1,1) (1,1,2) (1,1,3)
    assert m1.centroid_ras == pytest.approx((-8, 2, 14))
    assert rows[3].centroid_ijk == pytest.approx((5, 0, 0)) and rows[3].dice == 0.0
    assert compute_lesion_table(a, b)[0].centroid_ras is None          # no affine, no RAS


def test_lesion_table_one_b_lesion_bridging_two_a_lesions_is_one_row():
    rows = compute_lesion_table(T, BR)
    assert len(rows) == 1 and rows[0].a_labels == (1, 2) and rows[0].b_labels == (1,)


def test_disagreement_map_labels():
    a = vol((1, 1, 1), (2, 2, 2))
    b = vol((2, 2, 2), (3, 3, 3))
    m = disagreement_map(a, b)
    assert m.dtype == np.uint8
    assert (m[1, 1, 1], m[2, 2, 2], m[3, 3, 3], m[0, 0, 0]) == (2, 1, 3, 0)
    assert np.count_nonzero(m) == 3


# ----------------------------------------------------------------------------- compare_masks / rule
def test_compare_masks_empty_pairs_and_json():
    r = compare_masks(E, E)
    assert (r.dice, r.lesion_f1, r.hd95_mm, r.assd_mm, r.count_diff, r.volume_diff_ml) == (1.0, 1.0, 0.0, 0.0, 0, 0.0)
    assert r.lesions == [] and AutoAcceptRule().evaluate(r) == (True, [])
    r = compare_masks(E, T, spacing=(2, 2, 2))
    assert (r.dice, r.lesion_f1, r.hd95_mm, r.assd_mm, r.count_diff) == (0.0, 0.0, None, None, 2)
    assert (r.tp, r.fp, r.fn) == (0, 2, 0)
    d = json.loads(json.dumps(r.as_dict()))
    assert d["hd95_mm"] is None and d["n_only_b"] == 2 and len(d["lesions"]) == 2
    assert d["conventions"]["connectivity"] == 26


def test_compare_masks_anisotropic_spacing_from_affine():
    aff = np.diag([0.5, 0.5, 4.0, 1.0])
    r = compare_masks(V, W, affine=aff)
    assert r.spacing == (0.5, 0.5, 4.0)
    assert r.hd95_mm == pytest.approx(4.0) and r.volume_a_ml == pytest.approx(0.001)
    assert r.lesions[0].centroid_ras == pytest.approx((1.0, 1.0, 8.0))


def test_auto_accept_rule_configurable_and_recorded():
    big = box((1, 1, 1), (5, 5, 5))
    r = compare_masks(big, big | vol((7, 7, 7), shape=(8, 8, 8)), spacing=(2, 2, 2))   # extra 0.008 ml lesion in B
    assert r.dice > 0.98 and r.largest_unmatched_ml == pytest.approx(0.008)
    assert AutoAcceptRule().evaluate(r) == (True, [])
    ok, reasons = AutoAcceptRule(max_unmatched_lesion_ml=0.0).evaluate(r)
    assert not ok and reasons == ["lesion B2 drawn only by B: 0.008 ml > 0 ml"]
    ok, reasons = AutoAcceptRule(min_dice=0.995, max_count_diff=0, min_lesion_f1=0.9).evaluate(r)
    assert not ok and reasons == ["Dice 0.992 < 0.995", "lesion F1 0.667 < 0.9", "lesion count difference 1 > 0"]
    rule = AutoAcceptRule(min_dice=0.7, max_hd95_mm=5.0)
    d = json.loads(json.dumps(rule.as_dict()))
    assert d["min_dice"] == 0.7 and d["rule"] == "AutoAcceptRule"
    assert AutoAcceptRule.from_dict(d) == rule
    with pytest.raises(ValueError, match="min_dise"):
        AutoAcceptRule.from_dict({"min_dise": 0.7})
    ok, reasons = AutoAcceptRule(max_hd95_mm=5.0).evaluate(compare_masks(E, V))
    assert not ok and "HD95 undefined (one mask is empty)" in reasons


def test_compare_masks_matches_reference_on_random_masks():
    bench = _bench()
    rng = np.random.default_rng(11)
    from scipy import ndimage as ndi
    for _ in range(8):
        shape = tuple(int(x) for x in rng.integers(5, 20, 3))
        spacing = tuple(float(x) for x in rng.uniform(0.5, 4.0, 3))
        a = ndi.binary_dilation(rng.random(shape) < 0.03, iterations=int(rng.integers(0, 2)))
        b = ndi.binary_dilation(rng.random(shape) < 0.03, iterations=int(rng.integers(0, 2)))
        r = compare_masks(a, b, spacing=spacing)
        bench.check_identical(r, bench.reference_isles(a, b, spacing), bench.reference_surface(a, b, spacing))


# ----------------------------------------------------------------------------- real case 0009
def test_real_case_against_itself(shared_data):
    img = read_image(shared_data / CASE_MASK, with_sidecar=False)
    r = compare_images(img, img)
    assert (r.dice, r.lesion_f1, r.count_diff, r.volume_diff_ml, r.hd95_mm, r.assd_mm) == (1.0, 1.0, 0, 0.0, 0.0, 0.0)
    assert r.n_lesions_a == r.n_lesions_b == 18 and r.voxels_a == 523
    assert round(r.volume_a_ml, 3) == 4.184
    assert len(r.rows("matched")) == 18 and sum(x.voxels_a for x in r.lesions) == 523


def test_real_case_perturbed_equals_plain_references_at_2_and_1_mm(shared_data):
    bench = _bench()
    a, spacing, affine = bench.load_case_mask(shared_data)
    b = bench.perturb(a)
    r = compare_masks(a, b, spacing=spacing, affine=affine)
    bench.check_identical(r, bench.reference_isles(a, b, spacing), bench.reference_surface(a, b, spacing))
    assert (r.n_lesions_a, r.n_lesions_b, r.tp, r.fn, r.fp) == (18, 18, 17, 1, 1)
    assert len(r.rows("only A")) == 1 and len(r.rows("only B")) == 1
    assert 0.6 < r.dice < 0.8
    a1, b1 = bench.upsample2(a), bench.upsample2(b)
    sp1 = tuple(s / 2 for s in spacing)
    r1 = compare_masks(a1, b1, spacing=sp1)
    bench.check_identical(r1, bench.reference_isles(a1, b1, sp1), bench.reference_surface(a1, b1, sp1))
    assert r1.dice == r.dice and r1.lesion_f1 == r.lesion_f1 and r1.volume_diff_ml == pytest.approx(r.volume_diff_ml)


# ----------------------------------------------------------------------------- CLI
def _write(path, arr, affine=None, dtype=np.uint8):
    write_nifti(Image(array=arr.astype(dtype), affine=np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine),
                path, dtype=dtype)
    return path


def test_cli_compare_text_and_json(tmp_path, capsys):
    a = _write(tmp_path / "a.nii.gz", vol((1, 1, 1), (1, 1, 2), (4, 4, 4)))
    b = _write(tmp_path / "b.nii.gz", vol((1, 1, 2), (1, 1, 3), (0, 5, 5)))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "Dice                   0.3333" in out and "lesion F1 (A ref)      0.5000   (TP 1, FP 1, FN 1)" in out
    assert "matched" in out and "only A" in out and "only B" in out and "needs review" in out
    assert main(["compare", str(a), str(b), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["dice"] == pytest.approx(1 / 3) and d["n_lesions_a"] == 2 and d["volume_a_ml"] == pytest.approx(0.024)
    assert d["auto_accept"]["accepted"] is False and d["auto_accept"]["rule"]["min_dice"] == 0.8
    assert [row["status"] for row in d["lesions"]] == ["matched", "only A", "only B"]


def test_cli_compare_refuses_other_grid_and_non_binary(tmp_path, capsys):
    a = _write(tmp_path / "a.nii.gz", V)
    other = _write(tmp_path / "shifted.nii.gz", V, affine=np.diag([2.0, 2.0, 3.0, 1.0]))
    assert main(["compare", str(a), str(other)]) == 2
    err = capsys.readouterr().err
    assert "shifted.nii.gz: voxel-to-RAS affine differs from" in err
    small = _write(tmp_path / "small.nii.gz", np.zeros((5, 6, 6), bool))
    assert main(["compare", str(a), str(small)]) == 2
    assert "small.nii.gz: shape (5, 6, 6) differs from" in capsys.readouterr().err
    lab = _write(tmp_path / "labels.nii.gz", V.astype(np.uint8) * 2)
    assert main(["compare", str(lab), str(a)]) == 2
    assert "labels.nii.gz: not binary (values 0, 2)" in capsys.readouterr().err
    with pytest.raises(InputError, match="4D"):
        compare_images(Image(np.zeros((2, 2, 2, 2)), np.eye(4)), Image(np.zeros((2, 2, 2)), np.eye(4)), what_a="4D")


@pytest.mark.parametrize("candidates", [2, 3, 64])   # re-asking the tree for ties / first answer enough
def test_nearest_neighbour_search_is_bitwise_identical_to_a_float64_distance_transform(candidates):
    from scipy import ndimage as ndi

    from AISAnnotationLib.metrics.surface import nearest_distances

    rng = np.random.default_rng(3)
    for spacing in [(1.0, 1.0, 1.0), (0.4296875, 0.4296875, 5.5), (2.000000009, 1.9999999, 3.3)]:
        dst = rng.random((30, 40, 12)) < 0.01
        src = np.argwhere(rng.random(dst.shape) < 0.05)
        want = ndi.distance_transform_edt(~dst, sampling=spacing)[tuple(src.T)]
        assert np.array_equal(nearest_distances(src, np.argwhere(dst), spacing, candidates), want)


RING = [(5, 5 + di, 5 + dk) for di, dk in [(-3, 0), (3, 0), (0, -3), (0, 3), (-2, -2), (2, 2), (-2, 2), (2, -2)]]


@pytest.mark.parametrize("dst,spacing,expected", [
    # 4 points exactly 3 mm away (the ±2/±2 ones are sqrt(8) mm: nearer), isotropic: a true tie
    (RING, (1.0, 1.0, 1.0), S(8)),
    (RING[:4], (1.0, 1.0, 1.0 + 1e-9), 3.0),                     # tie broken by 1e-9: the j-axis pair wins
    (RING[:4], (1.0, 1.0 + 1e-9, 1.0), 3.0),                     # ... the k-axis pair
    (RING[:4], (1.0, 1.0, 1.0), 3.0),                            # 4 exact ties, 2 candidates at first
    (RING[:4], (1.0, 1.0, 1.0 - 1e-12), 3.0 * (1.0 - 1e-12)),    # near tie below the tree's margin
    (RING[:4], (1.0, 1.0 - 1e-12, 1.0), 3.0 * (1.0 - 1e-12)),
    (RING[:4], (1.0, 1.0, 1.0 - 1e-14), 3.0 * (1.0 - 1e-14)),    # within the tree's margin: asked again
    ([(5, 5, 5)], (0.7, 0.7, 0.7), 0.0),                          # the point itself
])
def test_nearest_distance_ties_table(dst, spacing, expected):
    from AISAnnotationLib.metrics.surface import nearest_distances

    for candidates in (2, 3, 64):
        got = nearest_distances([(5, 5, 5)], dst, spacing, candidates)
        assert got.tolist() == [pytest.approx(expected, rel=1e-15, abs=0)]
        d = np.array(dst) - 5
        exact = np.sqrt((((d * np.array(spacing)) ** 2).sum(axis=1)).min())
        assert got[0] == exact                                   # bit for bit, same float64 expression


def test_tree_search_equals_all_pairs_on_boxes(monkeypatch):
    from AISAnnotationLib.metrics import surface

    a = box((1, 1, 1), (7, 6, 5), shape=(9, 9, 9))
    b = box((2, 2, 0), (8, 8, 4), shape=(9, 9, 9))
    want = compute_surface_distances(a, b, (0.9, 1.0, 3.0))          # all pairs (small surfaces)
    monkeypatch.setattr(surface, "BRUTE_FORCE_PAIRS", 0)
    monkeypatch.setattr(surface, "KD_CANDIDATES", 2)
    monkeypatch.setattr(surface, "SHELL_VOXELS", 0)
    assert compute_surface_distances(a, b, (0.9, 1.0, 3.0)) == want


def test_voxel_list_labelling_equals_full_grid_labelling():
    from scipy import ndimage as ndi

    from AISAnnotationLib.metrics import label_voxels

    rng = np.random.default_rng(8)
    for _ in range(40):
        shape = tuple(int(x) for x in rng.integers(2, 14, 3))
        m = rng.random(shape) < rng.uniform(0.05, 0.6)       # lesions touching the array edges too
        ref, n = ndi.label(m, structure=np.ones((3, 3, 3)))
        lin, labels, count = label_voxels(m)
        assert count == n == label_components(m).count
        assert np.array_equal(lin, np.flatnonzero(m)) and np.array_equal(labels, ref.ravel()[lin])
        assert np.array_equal(labels, label_components(m).labels.ravel()[lin])
    assert label_voxels(E)[2] == 0 and label_voxels(D)[2] == 1 and label_voxels(T)[2] == 2
