"""Progress reporting through a callback (the Slicer widget and the CLI both listen)."""

from __future__ import annotations

import sys
from typing import Callable, Optional, TextIO

ProgressCallback = Callable[[float, str], None]
"""Called with (fraction done in [0, 1], message)."""


def null_progress(fraction: float, message: str) -> None:
    """A callback that does nothing."""


class TextProgress:
    """A one-line text progress bar on a terminal (plain lines when not a TTY)."""

    def __init__(self, stream: Optional[TextIO] = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, fraction: float, message: str) -> None:
        f = min(1.0, max(0.0, fraction))
        bar = "#" * int(round(f * self.width))
        line = f"[{bar:<{self.width}}] {f:4.0%} {message}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            if f >= 1.0:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
