"""The open page websockets of each login, so that logging out ends exactly that login's pages.

A user may be logged in on several PCs (one token per login); their pages share the user's one app
process. Logging out on one PC revokes that login's token and closes that login's websockets at once
(:meth:`LoginSockets.end`); the pages of the user's other logins stay connected.
"""

from __future__ import annotations

import asyncio


class LoginSockets:
    """token → one :class:`asyncio.Event` per open websocket of that login (set: close that websocket)."""

    def __init__(self) -> None:
        self._open: dict[str, set[asyncio.Event]] = {}

    def opened(self, token: str) -> asyncio.Event:
        """Register an accepted websocket of ``token``; the relay ends when the returned event is set."""
        ended = asyncio.Event()
        self._open.setdefault(token, set()).add(ended)
        return ended

    def closed(self, token: str, ended: asyncio.Event) -> None:
        events = self._open.get(token)
        if events is not None:
            events.discard(ended)
            if not events:
                del self._open[token]

    def end(self, token: str) -> int:
        """Close every open websocket of ``token`` (its login ended); returns how many."""
        events = self._open.pop(token, set())
        for ended in events:
            ended.set()
        return len(events)
