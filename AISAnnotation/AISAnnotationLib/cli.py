"""``ais-annotate``: the headless command line (everything that is not drawing)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import AISError

COMMAND_MODULES = (
    "data",
    "workflow",
    "compare",
    "preannotate",
    "views",
    "dicom",
    "qc",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ais-annotate",
        description="Acute ischemic stroke MRI annotation (expert consensus 2025): import, QC, "
                    "pre-annotation, agreement, export, reports, demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.commands.{name}").register(sub)
    return parser


def _default_session(args: argparse.Namespace) -> None:
    """``--session`` omitted on a dataset command: the subject's only session (every verb alike)."""
    root, subject = getattr(args, "root", None), getattr(args, "subject", None)
    if hasattr(args, "session") and args.session is None and isinstance(subject, str) and root is not None:
        from .bids import only_session

        args.session = only_session(root, subject)


def _quiet_broken_pipe() -> int:
    """Output piped into a reader that closed early (``| head``): stop quietly, like other Unix tools."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (embedded interpreter): nothing to redirect
        pass
    return 1  # what Python's own docs advise for EPIPE


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        _default_session(args)
        rc = int(args.func(args) or 0)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except AISError as exc:
        print(f"ais-annotate {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
