"""AES-GCM encryption of stored settings under named keys (a key id per value, for rotation)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from townhall.core.config import ConfigurationError, Settings
from townhall.core.errors import AppError

DEFAULT_KEY_ID = "default"
NONCE_BYTES = 12


class UndecryptableSetting(AppError):
    """A stored value the configured keys cannot open (a removed key id, a changed key)."""

    # Not a 500: the request is fine, the stored value and the server's keys disagree.
    status_code = 409


def derive_key(material: str, key_id: str) -> bytes:
    """A 256-bit AES key from any key string; the id separates keys sharing one string."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"townhall.app_settings:{key_id}".encode(),
    )
    return hkdf.derive(material.encode())


@dataclass(frozen=True)
class Sealed:
    """An encrypted value and the id of the key that encrypted it."""

    key_id: str
    data: bytes  # nonce + ciphertext + GCM tag


class Keyring:
    """Encrypts with the current key; decrypts with whichever key id a value names."""

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise ConfigurationError(
                f"TOWNHALL_SETTINGS_ENCRYPTION_KEY_ID {current!r} is not a key id of "
                "TOWNHALL_SETTINGS_ENCRYPTION_KEYS"
            )
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """`default` (derived from SECRET_KEY) plus every configured key id."""
        configured = {
            key_id: value.get_secret_value()
            for key_id, value in settings.settings_encryption_keys.items()
        }
        material = {DEFAULT_KEY_ID: settings.secret(), **configured}
        current = settings.settings_encryption_key_id
        if current is None:
            if len(configured) > 1:
                raise ConfigurationError(
                    "TOWNHALL_SETTINGS_ENCRYPTION_KEY_ID must name the key encrypting new values "
                    "when TOWNHALL_SETTINGS_ENCRYPTION_KEYS holds several"
                )
            current = next(iter(configured), DEFAULT_KEY_ID)
        return cls({k: derive_key(v, k) for k, v in material.items()}, current)

    def encrypt(self, name: str, plaintext: str) -> Sealed:
        """Seal `plaintext`; the setting name is authenticated, so rows cannot swap values."""
        nonce = os.urandom(NONCE_BYTES)
        data = self._keys[self.current].encrypt(nonce, plaintext.encode(), name.encode())
        return Sealed(self.current, nonce + data)

    def decrypt(self, name: str, sealed: Sealed) -> str:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise UndecryptableSetting(
                f"setting {name!r} was encrypted with key id {sealed.key_id!r}, which is not "
                "configured; add it back to TOWNHALL_SETTINGS_ENCRYPTION_KEYS or set the value "
                "again"
            )
        nonce, data = sealed.data[:NONCE_BYTES], sealed.data[NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, data, name.encode()).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise UndecryptableSetting(
                f"setting {name!r} cannot be decrypted with key id {sealed.key_id!r}: the key "
                "changed since it was stored (or the row was altered); restore the key or set the "
                "value again"
            ) from None
