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
        _default_session(args)
        rc = int(args.func(args) or 0)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except AISError as exc:
        return _fail(args.command, str(exc))
    except OSError as exc:
        return _fail(args.command, os_error_line(exc))
    except UnicodeDecodeError as exc:
        return _fail(args.command, f"a file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                                   f"{exc.start}: {exc.reason})")
    except json.JSONDecodeError as exc:
        return _fail(args.command, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    except RuntimeError as exc:  # pathlib.Path.resolve() on Python < 3.13 reports a symlink loop so
        if "Symlink loop" not in str(exc):
            raise
        return _fail(args.command, f"{str(exc).split('from ', 1)[-1].strip(chr(39))}: too many levels of symbolic links")


def os_error_line(exc: OSError) -> str:
    """'<file>: <problem>' for any OSError (permission denied, name too long, symlink loop, full disk …)."""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {what}"
    if exc.filename is not None:
        return f"{exc.filename}: {what}"
    return what


def _fail(command: str, message: str) -> int:
    print(f"ais-annotate {command}: error: {message or 'failed'}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
