"""A certificate authority and a server certificate for the ARM double's HTTPS.

The PKI is the server tests' (tests/server/pki.py, a package beside this one).
"""

from __future__ import annotations

from pathlib import Path


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost; returns (ca, cert, key) PEM paths."""
    from server.pki import Authority  # imported here: only the HTTPS double needs cryptography

    folder.mkdir(parents=True, exist_ok=True)
    authority = Authority(folder, "turnout-arm-double-ca")
    server = authority.issue("server", server=True)
    return authority.pair.cert, server.cert, server.key
