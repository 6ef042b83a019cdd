"""Streaming pieces of the acceptance report: per-session rows staged on disk, JSON written piece by piece.

The report's sections produce one row per session (or per mask, per file); with thousands of
sessions, holding them all — and then the whole JSON and HTML text — in memory made the
report's peak memory grow with the number of sessions. Here a section appends its rows to a
:class:`Rows` (one JSON line each, in a staging folder) and the report reads them back one
at a time when it writes ``report.json`` (:func:`iter_json`) and ``report.html``.

:func:`iter_json` yields exactly the text of ``json.dumps(obj, indent=2, ensure_ascii=False,
default=io._json_default)``, with :class:`Rows` in place of lists: the streamed report is
byte-identical to one built in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Optional

from ..io import _json_default

INDENT = "  "


def _line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_json_default) + "\n"


class Rows:
    """A list of JSON rows kept in a file: ``append`` writes one line, iteration reads them back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh: Optional[IO[str]] = open(self.path, "w", encoding="utf-8")
        self._n = 0

    def append(self, row: Any) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(_line(row))
        self._n += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Any]:
        if self._fh is not None:
            self._fh.flush()
        with open(self.path, encoding="utf-8") as fh:
            for _, line in zip(range(self._n), fh):
                yield json.loads(line)

    def __repr__(self) -> str:
        return f"Rows({self.path.name}, {self._n} rows)"


class RowStaging:
    """Factory of :class:`Rows` in one staging folder (``new(name)``), closed together."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._all: list[Rows] = []

    def new(self, name: str) -> Rows:
        rows = Rows(self.folder / f"{len(self._all):03d}.jsonl")
        self._all.append(rows)
        return rows

    def close(self) -> None:
        for r in self._all:
            r.close()


class RecordStore(Mapping):
    """key → JSON record, kept in one file (``put``); ``get``/``[]`` read one record back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "w+", encoding="utf-8")
        self._offsets: dict[str, int] = {}

    def put(self, key: str, rec: Any) -> None:
        self._fh.seek(0, 2)
        self._offsets[key] = self._fh.tell()
        self._fh.write(_line(rec))

    __setitem__ = put

    def __getitem__(self, key: str) -> Any:
        off = self._offsets[key]
        self._fh.flush()
        self._fh.seek(off)
        return json.loads(self._fh.readline())

    def __iter__(self) -> Iterator[str]:
        return iter(self._offsets)

    def __len__(self) -> int:
        return len(self._offsets)

    def close(self) -> None:
        self._fh.close()


def _lazy(obj: Any) -> bool:
    """Does ``obj`` hold a :class:`Rows` anywhere (then it is written piece by piece)?"""
    if isinstance(obj, Rows):
        return True
    if isinstance(obj, dict):
        return any(_lazy(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_lazy(v) for v in obj)
    return False


def _dumps(obj: Any, level: int) -> str:
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default)
    return text.replace("\n", "\n" + INDENT * level) if level else text


def _key(k: Any) -> str:
    if not isinstance(k, str):  # json's own key conversion (numbers, booleans, None)
        k = json.dumps(k)
    return json.dumps(k, ensure_ascii=False)


def iter_json(obj: Any, level: int = 0) -> Iterator[str]:
    """The text of ``json.dumps(obj, indent=2, ensure_ascii=False)`` in pieces; :class:`Rows` read row by row."""
    if not _lazy(obj):
        yield _dumps(obj, level)
        return
    inner = "\n" + INDENT * (level + 1)
    if isinstance(obj, dict):
        yield "{"
        for i, (k, v) in enumerate(obj.items()):
            yield ("," if i else "") + inner + _key(k) + ": "
            yield from iter_json(v, level + 1)
        yield "\n" + INDENT * level + "}"
        return
    items = iter(obj)
    first = True
    for v in items:
        yield ("[" if first else ",") + inner
        first = False
        yield from iter_json(v, level + 1)
    yield "[]" if first else "\n" + INDENT * level + "]"
