"""The identity map: original patient identity → pseudonymous subject label (kept OUTSIDE the dataset).

A JSON file the user names (``--id-map``), written with owner-only permissions. It holds
the per-dataset secret that drives UID replacement and the per-subject date shift, so
later imports of the same subject give the same offsets and linkable UIDs. It is refused
when it would lie inside the BIDS root: the dataset must never contain the key to its own
pseudonyms.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError
from ..io import atomic_write_text

FORMAT = "AISAnnotation identity map 1"


def check_outside(path: Path, bids_root: Path) -> Path:
    """``path`` resolved; InputError when it lies inside ``bids_root``."""
    p = Path(path).expanduser().resolve()
    root = Path(bids_root).expanduser().resolve()
    if p == root or root in p.parents:
        raise InputError(
            f"{path}: the identity map must be stored outside the BIDS dataset {root} "
            "(it re-identifies the subjects); choose a path elsewhere"
        )
    return p


class IdMap:
    """Load (or start) an identity map file; :meth:`save` writes it atomically (mode 600)."""

    def __init__(self, path: Optional[Path], bids_root: Path) -> None:
        self.path = check_outside(path, bids_root) if path is not None else None
        self.data: dict[str, Any] = {"format": FORMAT, "secret": secrets.token_hex(32), "subjects": {}}
        if self.path is not None and self.path.exists():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(f"{self.path}: not a readable identity map ({exc})") from exc
            if self.data.get("format") != FORMAT or "secret" not in self.data:
                raise InputError(f"{self.path}: not an AISAnnotation identity map (format {self.data.get('format')!r})")
            self.data.setdefault("subjects", {})

    @property
    def persistent(self) -> bool:
        return self.path is not None

    @property
    def secret(self) -> bytes:
        return bytes.fromhex(self.data["secret"])

    def check_subject(self, subject: str, patient_id: str) -> None:
        """Refuse to give one label two people or one person two labels."""
        subs = self.data["subjects"]
        if subject in subs and patient_id and subs[subject].get("PatientID") not in (None, "", patient_id):
            raise InputError(
                f"subject label {subject!r} is already mapped to another patient in {self.path}; "
                "choose another --subject"
            )
        for label, rec in subs.items():
            if label != subject and patient_id and rec.get("PatientID") == patient_id:
                raise InputError(
                    f"this patient (PatientID in the DICOM) is already subject {label!r} in {self.path}; "
                    f"import the session as --subject {label}"
                )

    def record(self, subject: str, session: Optional[str], identity: dict[str, str],
               offset_days: int, source: str) -> None:
        rec = self.data["subjects"].setdefault(subject, {})
        for k, v in identity.items():
            if v:
                rec.setdefault(k, v)
        rec["date_offset_days"] = offset_days
        sessions = rec.setdefault("sessions", {})
        sessions[session or ""] = {
            "source": source,
            "imported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **{k: v for k, v in identity.items() if k.startswith("Study") and v},
        }

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.data, indent=2, ensure_ascii=False) + "\n")
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass
