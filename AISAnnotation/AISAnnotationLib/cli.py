"""``ais-annotate``: the headless command line (everything that is not drawing)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
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


def build_parser(server_mode: bool = False, parser_class: type = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``ais-annotate`` parser; ``server_mode``: the workflow verbs without ROOT and --rater (``--server``)."""
    parser = parser_class(
        prog="ais-annotate",
        description="Acute ischemic stroke MRI annotation (expert consensus 2025): import, QC, "
                    "pre-annotation, agreement, export, reports, demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--audit-key", type=Path, metavar="FILE",
                        help="audit key file kept OUTSIDE the dataset: signs (HMAC-SHA-256) and verifies the "
                             "audit log (same as $AIS_AUDIT_KEY_FILE)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.commands.{name}").register(sub)
    from .commands import remote

    remote.add_server_options(parser, server_mode)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .commands import remote

    argv = list(sys.argv[1:] if argv is None else argv)
    server = remote.server_mode(argv, build_parser)
    parser = build_parser(server_mode=server)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.audit_key is not None:
            from .audit import KEY_ENV, load_key

            load_key(args.audit_key)  # readable and long enough; the dataset check happens per log
            os.environ[KEY_ENV] = str(args.audit_key.resolve())
        if server:
            return remote.run(args, args.server or os.environ.get("AIS_SERVER", ""))
        return int(args.func(args) or 0)
    except AISError as exc:
        return _fail(args.command, str(exc))
    except OSError as exc:
        return _fail(args.command, os_error_line(exc))
    except UnicodeDecodeError as exc:
        return _fail(args.command, f"a file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                                   f"{exc.start}: {exc.reason})")
    except json.JSONDecodeError as exc:
        return _fail(args.command, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")


def os_error_line(exc: OSError) -> str:
    """'<file>: <problem>' for any OSError (permission denied, name too long, symlink loop, full disk …)."""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {what}"
    if exc.filename is not None:
        return f"{exc.filename}: {what}"
    return what


def _fail(command: str, message: str) -> int:
    print(f"ais-annotate {command}: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
