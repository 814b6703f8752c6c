"""Encryption at rest with ``SMS_DELIVERY['ENCRYPTION_KEYS']`` (Fernet: AES-128-CBC + HMAC-SHA256).

Phone numbers, raw request bodies and provider payloads are personal data: they are stored as
Fernet tokens and read back only where a person may see them (the audited console views) or where
the app needs them (replay). The first key encrypts, every key decrypts, so a new key put first
rotates without a migration.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .conf import app_settings
from .exceptions import ConfigurationError


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    # Any high-entropy string is accepted; the Fernet key is derived from it.
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in keys]
    )


def _fernet() -> MultiFernet:
    keys = app_settings.ENCRYPTION_KEYS
    if not keys:
        raise ConfigurationError("SMS_DELIVERY['ENCRYPTION_KEYS'] is not set (see check E003).")
    return _fernet_for(tuple(keys))


def encrypt_bytes(data: bytes) -> str:
    """``data`` sealed with the first key, as ASCII text for a text column."""
    return _fernet().encrypt(data).decode("ascii")


def decrypt_bytes(token: str) -> bytes | None:
    """The bytes sealed in ``token``; ``None`` when no configured key opens it (rotated out)."""
    try:
        return _fernet().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        return None


def encrypt(plaintext: str) -> str:
    """Encrypt a string; ``""`` stays ``""``."""
    return encrypt_bytes(plaintext.encode()) if plaintext else ""


def decrypt(token: str) -> str:
    """Decrypt a string; ``""`` when empty or when no key fits."""
    data = decrypt_bytes(token) if token else None
    return data.decode() if data is not None else ""


def encrypt_json(data: Any) -> str:
    """A JSON-serializable value, encrypted. ASCII JSON, so NUL, lone surrogates and NaN survive
    exactly (a JSON column in PostgreSQL refuses all three)."""
    return encrypt_bytes(json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode())


def decrypt_json(token: str) -> Any:
    """The value sealed by :func:`encrypt_json`; ``None`` when empty or no key fits."""
    data = decrypt_bytes(token) if token else None
    return json.loads(data) if data is not None else None
