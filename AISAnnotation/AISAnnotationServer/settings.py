"""Workflow settings changed over the API: validated by the library's rule, audited with before/after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from AISAnnotationLib import audit, bids
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.io import write_json
from AISAnnotationLib.locking import file_lock
from AISAnnotationLib.workflow import store

KEYS = tuple(store.DEFAULT_CONFIG)


def change_settings(root: Path, who: str, changes: dict[str, Any]) -> dict[str, Any]:
    from AISAnnotationLib.metrics import AutoAcceptRule

    unknown = sorted(set(changes) - set(KEYS))
    if unknown:
        raise InputError(f"unknown workflow setting(s) {', '.join(unknown)} (one of {', '.join(KEYS)})")
    bids.ensure_lesion_derivatives(root)
    with file_lock(store.lock_path(root)):
        before = store.load_config(root)
        cfg = dict(before, **changes)
        if cfg.get("auto_accept"):
            try:
                cfg["auto_accept"] = AutoAcceptRule.from_dict(cfg["auto_accept"]).as_dict()
            except (TypeError, ValueError) as exc:
                raise InputError(f"auto_accept: {exc}") from exc
            cfg["auto_accept"].pop("rule", None)
        if cfg["auto_merge"] not in ("intersection", "union"):
            raise InputError(f"auto_merge must be 'intersection' or 'union', got {cfg['auto_merge']!r}")
        write_json(store.config_path(root), cfg)
        audit.append(store.audit_log(root), who=who, role="data-manager", case=None, action="configure",
                     details={"before": before, "after": cfg})
    return cfg
