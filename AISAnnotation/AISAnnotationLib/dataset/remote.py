"""The server transport: HTTP(S) calls with ``urllib`` (bundled with Slicer), TLS verified against a CA file.

The caller's identity is the login token's; nothing here names a rater. Case images are downloaded
once into a local cache (``$AIS_CACHE`` or ``~/.cache/ais-annotate``) laid out as a BIDS folder, so
the library's :func:`~AISAnnotationLib.case.load_case` reads them as for a local folder. Tokens are
kept in ``$AIS_TOKEN_FILE`` or ``~/.config/ais-annotate/logins.json`` with mode 0600.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import raters
from ..case import Case, load_case
from ..errors import InputError
from ..image import Image
from .base import split_case_id

TIMEOUT = 120.0


class RemoteError(InputError):
    """The server refused or failed a request (``status``: HTTP status, ``kind``: role / blinding / …)."""

    def __init__(self, message: str, status: int = 0, kind: str = ""):
        super().__init__(message)
        self.status, self.kind = status, kind


def token_file() -> Path:
    env = os.environ.get("AIS_TOKEN_FILE")
    return Path(env) if env else Path.home() / ".config" / "ais-annotate" / "logins.json"


def _read_logins() -> dict[str, Any]:
    p = token_file()
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: unreadable login file ({exc}); log in again") from exc


def save_login(url: str, login: dict[str, Any]) -> Path:
    """Store a login (token, user, role, expiry, CA file) for ``url``: user-only permissions, atomic."""
    p = token_file()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _read_logins()
    data[url.rstrip("/")] = login
    fd, tmp = tempfile.mkstemp(prefix=".logins.", dir=p.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def load_login(url: str) -> dict[str, Any]:
    found = _read_logins().get(url.rstrip("/"))
    if not found:
        raise InputError(f"not logged in to {url}; run `ais-annotate login {url} --user ID`")
    return found


def _context(url: str, ca_file: Optional[str]) -> Optional[ssl.SSLContext]:
    if not url.startswith("https://"):
        return None
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    return ctx


def request(url: str, method: str, path: str, body: Any = None, token: Optional[str] = None,
            ca_file: Optional[str] = None, raw: bool = False) -> Any:
    """One HTTP request; JSON in and out (``raw``: the response bytes). Refusals raise :class:`RemoteError`."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT, context=_context(url, ca_file)) as resp:
            payload = resp.read()
    except urllib.error.HTTPError as exc:
        try:
            info = json.loads(exc.read().decode("utf-8"))
        except ValueError:
            info = {}
        detail = info.get("detail") if isinstance(info, dict) else None
        if not isinstance(detail, str):
            detail = json.dumps(detail) if detail else exc.reason
        raise RemoteError(f"server refused ({exc.code}): {detail}", exc.code, info.get("kind", "")) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise RemoteError(f"{url}: cannot reach the server ({getattr(exc, 'reason', exc)})") from None
    return payload if raw else json.loads(payload.decode("utf-8"))


def _b64_mask(img: Image) -> str:
    from ..workflow.store import mask_bytes

    return base64.b64encode(mask_bytes(np.asarray(img.array).astype(np.uint8), img.affine)).decode("ascii")


def _image(data: bytes, name: str = "mask") -> Image:
    import nibabel as nib

    nii = nib.Nifti1Image.from_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return Image(array=np.asanyarray(nii.dataobj), affine=np.asarray(nii.affine, float), name=name)


class RemoteDataset:
    """A dataset on an annotation server, as the account of ``token``."""

    def __init__(self, url: str, token: str, ca_file: Optional[str] = None, cache_dir: Optional[Any] = None):
        self.url, self.token, self.ca_file = url.rstrip("/"), token, ca_file
        me = self._call("GET", "/auth/me")
        self.user, self.role = me["user"], me["role"]
        self.location = self.url
        base = Path(str(cache_dir)) if cache_dir else Path(os.environ.get("AIS_CACHE", Path.home() / ".cache"
                                                                           / "ais-annotate"))
        self.cache = base / hashlib.sha256(self.url.encode()).hexdigest()[:16] / self.user

    # ----------------------------------------------------------------- construction
    @classmethod
    def login(cls, url: str, user: str, password: str, ca_file: Optional[str] = None, store: bool = True,
              cache_dir: Optional[Any] = None) -> RemoteDataset:
        res = request(url, "POST", "/auth/login", {"user": user, "password": password}, ca_file=ca_file)
        if store:
            save_login(url, {"token": res["token"], "user": res["user"], "role": res["role"],
                             "expires": res["expires"], "ca_file": ca_file})
        return cls(url, res["token"], ca_file=ca_file, cache_dir=cache_dir)

    @classmethod
    def from_saved_login(cls, url: str, ca_file: Optional[str] = None) -> RemoteDataset:
        saved = load_login(url)
        return cls(url, saved["token"], ca_file=ca_file or saved.get("ca_file") or os.environ.get("AIS_CA_FILE"))

    def _call(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        try:
            return request(self.url, method, path, body, token=self.token, ca_file=self.ca_file, raw=raw)
        except RemoteError as exc:
            if exc.status == 403 and exc.kind in ("role", "blinding"):
                raise raters.RoleError(str(exc)) from None
            raise

    @staticmethod
    def _q(case_id: str) -> str:
        split_case_id(case_id)
        return urllib.parse.quote(case_id, safe="")

    # ----------------------------------------------------------------- Dataset
    def queue(self, state_filter: str = "all cases", search: str = "") -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"filter": state_filter, "search": search})
        return self._call("GET", f"/cases?{q}")

    def status(self, case_id: str) -> dict[str, Any]:
        return self._call("GET", f"/cases/{self._q(case_id)}")

    def load_case(self, case_id: str) -> Case:
        """Download the raw images of the case (once; files are immutable) and load them."""
        sub, ses = split_case_id(case_id)
        self.cache.mkdir(parents=True, exist_ok=True)
        desc = self.cache / "dataset_description.json"
        if not desc.is_file():
            desc.write_text(json.dumps({"Name": f"cache of {self.url}", "BIDSVersion": "1.9.0"}), encoding="utf-8")
        for f in self._call("GET", f"/cases/{self._q(case_id)}/files"):
            rel = Path(f["path"])
            if rel.is_absolute() or ".." in rel.parts:
                raise RemoteError(f"server sent an unsafe path {f['path']!r}")
            dst = self.cache / rel
            if dst.is_file() and dst.stat().st_size == f["size"]:
                continue
            data = self._call("GET", f"/cases/{self._q(case_id)}/files/{urllib.parse.quote(f['path'])}", raw=True)
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.part")
            tmp.write_bytes(data)
            os.replace(tmp, dst)
        return load_case(self.cache, sub, ses)

    def get_mask(self, case_id: str, owner: str, revision: Optional[int] = None) -> Image:
        q = f"?revision={int(revision)}" if revision is not None else ""
        data = self._call("GET", f"/cases/{self._q(case_id)}/masks/{urllib.parse.quote(owner, safe='')}{q}",
                          raw=True)
        return _image(data, owner)

    def review_material(self, case_id: str) -> Any:
        from ..workflow import ReviewMaterial

        m = self._call("GET", f"/cases/{self._q(case_id)}/review")
        return ReviewMaterial(a_rater=m["a_rater"], b_rater=m["b_rater"],
                              a=_image(base64.b64decode(m["a"]), "A"), b=_image(base64.b64decode(m["b"]), "B"),
                              disagreement=_image(base64.b64decode(m["disagreement"]), "disagreement"),
                              agreement=m["agreement"], label_names={int(k): v for k, v in m["label_names"].items()})

    def submit(self, case_id: str, mask: Image, case: Optional[Case] = None, **options: Any) -> dict[str, Any]:
        body = {k: v for k, v in options.items() if v is not None}
        body["mask"] = _b64_mask(mask)
        return self._call("POST", f"/cases/{self._q(case_id)}/submissions", body)

    def decide(self, case_id: str, decision: str, accept: Optional[str] = None, corrected: Optional[Image] = None,
               reason: Optional[str] = None, case: Optional[Case] = None,
               return_to: Optional[list[str]] = None) -> dict[str, Any]:
        body: dict[str, Any] = {"decision": decision, "accept": accept, "reason": reason, "return_to": return_to}
        if corrected is not None:
            body["corrected"] = _b64_mask(corrected)
        return self._call("POST", f"/cases/{self._q(case_id)}/decisions", body)

    def save_screening(self, case_id: str, likert: dict[str, int], artifacts: list[str], exclusions: list[str],
                       note: str) -> dict[str, Any]:
        return self._call("POST", f"/cases/{self._q(case_id)}/screening",
                          {"likert": likert, "artifacts": artifacts, "exclusions": exclusions, "note": note})

    # ----------------------------------------------------------------- data manager
    def settings(self, changes: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        return self._call("PUT", "/settings", changes) if changes else self._call("GET", "/settings")

    def qualify(self, masks: dict[str, Image], minutes: Optional[dict[str, float]] = None) -> dict[str, Any]:
        """Submit this annotator's trial masks (case id → mask); returns the qualification report."""
        return self._call("POST", "/qualification", {"masks": {k: _b64_mask(v) for k, v in masks.items()},
                                                      "minutes": minutes or {}})

    def run_qc(self) -> list[dict[str, Any]]:
        """Image QC of every session on the server: rows ``case_id``, ``excluded``, ``reason``."""
        return self._call("POST", "/qc")

    def write_report(self, out_dir: Path, run_validator: bool = True) -> dict[str, Any]:
        """Have the server build the acceptance report and download its files into ``out_dir`` (atomic);
        returns the server's answer (``id``, ``verdict``) with ``html``, the local report.html."""
        from ..io import atomic_write_bytes

        rep = self._call("POST", "/report", {"run_validator": bool(run_validator)})
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in rep["files"]:
            atomic_write_bytes(out_dir / f.rsplit("/", 1)[1], self._call("GET", f, raw=True))
        return dict(rep, html=str(out_dir / "report.html"))

    def audit_verify(self) -> dict[str, Any]:
        return self._call("GET", "/audit/verify")

    def add_account(self, **fields: Any) -> dict[str, Any]:
        return self._call("POST", "/accounts", fields)

    def disable_account(self, user: str) -> dict[str, Any]:
        return self._call("POST", f"/accounts/{urllib.parse.quote(user, safe='')}/disable")
