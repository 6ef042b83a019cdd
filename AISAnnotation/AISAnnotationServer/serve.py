"""Run the server with uvicorn (TLS when a certificate and key are given)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from AISAnnotationLib.errors import InputError

from .accounts import AccountStore


def first_start_hint(state: Path) -> str:
    return ("No accounts yet. Create the first data manager account (offline, on this machine):\n"
            f"    ais-annotate accounts add --state {state} --user dm01 --role data-manager\n"
            "then log in from a client:  ais-annotate login URL --user dm01")


def run(root: Path, state: Path, host: str = "127.0.0.1", port: int = 8000, tls_cert: Optional[Path] = None,
        tls_key: Optional[Path] = None, token_ttl: Optional[float] = None) -> None:
    import uvicorn

    from .app import create_app

    if (tls_cert is None) != (tls_key is None):
        raise InputError("give both --tls-cert and --tls-key (or neither)")
    for p in (tls_cert, tls_key):
        if p is not None and not Path(p).is_file():
            raise InputError(f"{p}: no such file")
    kw = {} if token_ttl is None else {"token_ttl": token_ttl}
    app = create_app(root, state, **kw)
    if AccountStore(state).count() == 0:
        print(first_start_hint(Path(state).resolve()), flush=True)
    scheme = "https" if tls_cert else "http"
    print(f"AISAnnotation server for {Path(root).resolve()} on {scheme}://{host}:{port}", flush=True)
    uvicorn.run(app, host=host, port=port, ssl_certfile=str(tls_cert) if tls_cert else None,
                ssl_keyfile=str(tls_key) if tls_key else None, log_level="warning", workers=1)
