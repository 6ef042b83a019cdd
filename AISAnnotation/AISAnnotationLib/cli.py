"""``ais-annotate``: the headless command line (everything that is not drawing)."""

from __future__ import annotations

import argparse
import importlib
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
    "server",
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
    from .commands import remote

    remote.add_server_options(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .commands import remote

    try:
        url = remote.server_of(args)
        if url:
            return remote.run(args, url)
        remote.check_local(args)
        return int(args.func(args) or 0)
    except AISError as exc:
        print(f"ais-annotate {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
