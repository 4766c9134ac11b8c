"""Operator PINs, stored as salted scrypt hashes: ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>``.

The cost parameters travel with the hash so they can be raised later without invalidating stored PINs.
"""

from __future__ import annotations

import hashlib
import hmac
import os

_SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
_DKLEN = 32
MIN_PIN_LENGTH = 4


def hash_pin(pin: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """Return the storable salted scrypt hash of ``pin``.

    Args:
        pin: at least four characters (digits in practice).
        n: scrypt CPU/memory cost, a power of two.
        r: scrypt block size.
        p: scrypt parallelism.

    Raises:
        ValueError: when the PIN is too short.
    """
    if len(pin) < MIN_PIN_LENGTH:
        raise ValueError(f"a PIN needs at least {MIN_PIN_LENGTH} characters")
    salt = os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=2**26)
    return f"{_SCHEME}${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    """Whether ``pin`` matches a hash made by :func:`hash_pin` (constant-time comparison; malformed → False)."""
    try:
        scheme, n_s, r_s, p_s, salt_hex, digest_hex = stored.split("$")
        if scheme != _SCHEME:
            return False
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        got = hashlib.scrypt(
            pin.encode(), salt=salt, n=int(n_s), r=int(r_s), p=int(p_s), dklen=len(expected), maxmem=2**26
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)
