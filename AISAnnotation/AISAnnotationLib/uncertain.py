"""Uncertain (fuzzy) regions an annotator records with a note and a decision (consensus R18).

An :class:`UncertainRegion` is either a point (RAS mm) or a connected component of a segment
(identified by the segment id, the RAS point that picked it, its voxel count and centroid).
:class:`UncertainRegionList` keeps them in order, saves/loads JSON atomically, and lists them
for the GUI's jump-to table. The workflow's annotation sidecar embeds ``to_dict()`` output.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import InputError
from .io import read_json, write_json

DECISIONS = ("included", "excluded", "for-review")
KINDS = ("point", "component")
FORMAT = "ais-uncertain-regions/1"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _ras(value: Any, what: str) -> tuple[float, float, float]:
    try:
        x, y, z = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: expected three RAS coordinates in mm, got {value!r}") from exc
    return (x, y, z)


@dataclass
class UncertainRegion:
    """One doubtful region with the annotator's handling of it.

    Attributes:
        position_ras: the point (mm, RAS) to jump to: the picked point or the component centroid.
        note: free text (why it is doubtful, what was seen on which sequence).
        decision: "included", "excluded" or "for-review".
        rater: who recorded it.
        time: ISO 8601 UTC.
        kind: "point" or "component".
        segment_id: segment whose component was picked (component kind).
        voxels / volume_ml: size of the component (component kind).
        picked_ras: the point used to pick the component (component kind).
    """

    position_ras: tuple[float, float, float]
    note: str
    decision: str = "for-review"
    rater: str = ""
    time: str = field(default_factory=_now)
    kind: str = "point"
    segment_id: Optional[str] = None
    voxels: Optional[int] = None
    volume_ml: Optional[float] = None
    picked_ras: Optional[tuple[float, float, float]] = None

    def __post_init__(self) -> None:
        self.position_ras = _ras(self.position_ras, "uncertain region position")
        if self.picked_ras is not None:
            self.picked_ras = _ras(self.picked_ras, "uncertain region picked point")
        if self.decision not in DECISIONS:
            raise InputError(f"uncertain region decision {self.decision!r}: use one of {', '.join(DECISIONS)}")
        if self.kind not in KINDS:
            raise InputError(f"uncertain region kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.kind == "component" and not self.segment_id:
            raise InputError("an uncertain segment component needs its segment_id")
        if not isinstance(self.note, str):
            raise InputError(f"uncertain region note must be text, got {type(self.note).__name__}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "position_ras": [round(v, 3) for v in self.position_ras],
                             "note": self.note, "decision": self.decision, "rater": self.rater, "time": self.time}
        if self.kind == "component":
            d.update(segment_id=self.segment_id, voxels=self.voxels, volume_ml=self.volume_ml,
                     picked_ras=[round(v, 3) for v in self.picked_ras] if self.picked_ras else None)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UncertainRegion:
        if not isinstance(data, dict) or "position_ras" not in data or "note" not in data:
            raise InputError(f"uncertain region entry needs position_ras and note: {data!r}")
        known = {"kind", "position_ras", "note", "decision", "rater", "time", "segment_id", "voxels",
                 "volume_ml", "picked_ras"}
        return cls(**{k: v for k, v in data.items() if k in known})

    def label(self) -> str:
        """Short text for a list row."""
        x, y, z = self.position_ras
        where = f"R{x:.0f} A{y:.0f} S{z:.0f}"
        what = f"{self.segment_id} component ({self.voxels} vox)" if self.kind == "component" else "point"
        return f"[{self.decision}] {what} at {where}: {self.note}"


@dataclass
class UncertainRegionList:
    """Ordered uncertain regions of one annotation."""

    regions: list[UncertainRegion] = field(default_factory=list)

    def add(self, region: UncertainRegion) -> int:
        """Append; return its index."""
        self.regions.append(region)
        return len(self.regions) - 1

    def remove(self, index: int) -> UncertainRegion:
        return self.regions.pop(index)

    def set_decision(self, index: int, decision: str, note: Optional[str] = None) -> None:
        r = self.regions[index]
        if decision not in DECISIONS:
            raise InputError(f"uncertain region decision {decision!r}: use one of {', '.join(DECISIONS)}")
        r.decision = decision
        if note is not None:
            r.note = note
        r.time = _now()

    def listing(self, decision: Optional[str] = None) -> list[tuple[int, str, tuple[float, float, float]]]:
        """(index, label, jump-to RAS) rows, optionally only one decision."""
        return [(i, r.label(), r.position_ras) for i, r in enumerate(self.regions)
                if decision is None or r.decision == decision]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "regions": [r.to_dict() for r in self.regions]}

    @classmethod
    def from_dict(cls, data: Any) -> UncertainRegionList:
        if isinstance(data, list):  # a bare list of regions (as embedded in a sidecar)
            items = data
        elif isinstance(data, dict) and isinstance(data.get("regions"), list):
            items = data["regions"]
        else:
            raise InputError("uncertain regions: expected {'regions': [...]} or a list")
        return cls([UncertainRegion.from_dict(d) for d in items])

    def save(self, path: Path) -> None:
        """Write JSON atomically (temp file + rename): an existing file is never half-written."""
        write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: Path) -> UncertainRegionList:
        path = Path(path)
        try:
            return cls.from_dict(read_json(path))
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc
