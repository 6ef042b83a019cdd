"""Test hook shared by the workflow store and the audit log: die or pause at a named point."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

FAULT_ENV = "AIS_WORKFLOW_FAULT"


def fault_point(name: str) -> None:
    """Die (SIGKILL) or pause at ``name`` when ``$AIS_WORKFLOW_FAULT`` asks for it."""
    want = os.environ.get(FAULT_ENV, "")
    if not want:
        return
    if want == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
        time.sleep(10)
    if want == f"pause:{name}":
        flag = os.environ.get(FAULT_ENV + "_FLAG")
        release = os.environ.get(FAULT_ENV + "_RELEASE")
        if flag:
            Path(flag).write_text(name)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (release and Path(release).exists()):
            time.sleep(0.05)
