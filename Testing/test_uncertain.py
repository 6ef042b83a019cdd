"""Uncertain-region notes (R18): dataclass checks, listing, atomic JSON round trip."""

from __future__ import annotations

import json

import pytest

from AISAnnotationLib.errors import InputError
from AISAnnotationLib.uncertain import UncertainRegion, UncertainRegionList


def _two():
    a = UncertainRegion((1, 2, 3), "faint, FLAIR negative", decision="included", rater="r1", time="2026-01-01T00:00:00Z")
    b = UncertainRegion((4.5, 5, 6), "perivascular space?", rater="r2", kind="component", segment_id="lesion",
                        voxels=7, volume_ml=0.056, picked_ras=(4, 5, 6), time="2026-01-01T00:01:00Z")
    return UncertainRegionList([a, b])


def test_round_trip_json(tmp_path):
    regions = _two()
    path = tmp_path / "notes.json"
    regions.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "ais-uncertain-regions/1"
    assert data["regions"][1] == {"kind": "component", "position_ras": [4.5, 5.0, 6.0], "note": "perivascular space?",
                                  "decision": "for-review", "rater": "r2", "time": "2026-01-01T00:01:00Z",
                                  "segment_id": "lesion", "voxels": 7, "volume_ml": 0.056, "picked_ras": [4.0, 5.0, 6.0]}
    again = UncertainRegionList.load(path)
    assert again.to_dict() == regions.to_dict()
    assert UncertainRegionList.from_dict(data["regions"]).to_dict() == regions.to_dict()  # bare list (sidecar)


def test_listing_and_decisions():
    regions = _two()
    assert [i for i, _, _ in regions.listing("for-review")] == [1]
    regions.set_decision(1, "excluded", note="PVS on T2")
    rows = regions.listing()
    assert rows[1][2] == (4.5, 5.0, 6.0)
    assert rows[1][1].startswith("[excluded] lesion component (7 vox)") and "PVS on T2" in rows[1][1]
    with pytest.raises(InputError, match="decision"):
        regions.set_decision(0, "maybe")


@pytest.mark.parametrize("kwargs, message", [
    ({"position_ras": (1, 2), "note": "x"}, "three RAS"),
    ({"position_ras": (1, 2, 3), "note": "x", "decision": "unsure"}, "decision"),
    ({"position_ras": (1, 2, 3), "note": "x", "kind": "component"}, "segment_id"),
    ({"position_ras": (1, 2, 3), "note": 5}, "text"),
])
def test_bad_regions_are_rejected(kwargs, message):
    with pytest.raises(InputError, match=message):
        UncertainRegion(**kwargs)


def test_bad_file_names_the_file(tmp_path):
    p = tmp_path / "n.json"
    p.write_text('{"regions": [{"note": "no position"}]}')
    with pytest.raises(InputError, match=str(p.name)):
        UncertainRegionList.load(p)
