"""Helpers for the server tests and benchmark: a test CA + server certificate, a real server process."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aistest import REPO

PASSWORD = "correct horse battery"


def make_tls(out: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1/localhost, PEM files in ``out``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AIS test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_p, cert_p, key_p = out / "ca.pem", out / "server.pem", out / "server.key"
    ca_p.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_p.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    os.chmod(key_p, 0o600)
    return ca_p, cert_p, key_p


def qualify_annotators(dm, annotators, tmp: Path) -> None:
    """Data manager ``dm`` defines a trial set (5 ellipsoid cases) and each annotator passes it over HTTP."""
    from aistest_workflow import make_trial_dataset

    from AISAnnotationLib.io import read_image

    trial = make_trial_dataset(tmp / "trial")
    dm._call("POST", "/qualification/trial-set", {"trial_dataset": str(trial)})
    masks = {p.name[: -len("_mask.nii.gz")]: read_image(p, with_sidecar=False)
             for p in sorted((trial / "masks").glob("*_mask.nii.gz"))}
    for ds in annotators:
        rep = ds.qualify(masks, {k: 10.0 for k in masks})
        assert rep["passed"], rep


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "AISAnnotation") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("AIS_AUDIT_KEY_FILE", None)
    env.update(extra)
    return env


def start_server(root: Path, state: Path, port: int, tls: tuple[Path, Path, Path] | None = None,
                 log: Path | None = None, extra_args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """``ais-annotate serve`` in a subprocess; returns (process, base URL) once it answers /info."""
    cmd = [sys.executable, "-m", "AISAnnotationLib", "serve", str(root), "--state", str(state),
           "--port", str(port), *extra_args]
    if tls:
        cmd += ["--tls-cert", str(tls[1]), "--tls-key", str(tls[2])]
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=server_env())
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    ctx = ssl.create_default_context(cafile=str(tls[0])) if tls else None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text() if log else ''}")
        try:
            with urllib.request.urlopen(url + "/info", timeout=2, context=ctx):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


def add_account(state: Path, user: str, role: str, password: str = PASSWORD, *extra: str) -> None:
    """``ais-annotate accounts add`` (``extra``: e.g. ``--root ROOT --name NAME`` to register the rater)."""
    r = subprocess.run([sys.executable, "-m", "AISAnnotationLib", "accounts", "add", "--state", str(state),
                        "--user", user, "--role", role, "--password-stdin", *map(str, extra)], input=password + "\n",
                       capture_output=True, text=True, env=server_env(), timeout=60)
    assert r.returncode == 0, r.stderr
