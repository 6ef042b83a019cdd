"""HTTP API over a dataset: identity (accounts, tokens), roles and transport; no workflow rules.

Every workflow rule stays in :mod:`AISAnnotationLib`; the server only adds who is calling (from the
bearer token, never from a request field), turns library refusals into 401/403 answers (audited), and
is the only process writing the dataset. Start it with ``ais-annotate serve ROOT --state DIR``.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
