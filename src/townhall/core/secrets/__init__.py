"""Settings stored in the database (admin API), secrets encrypted at rest, over Settings."""

from townhall.core.secrets.crypto import Keyring, UndecryptableSetting
from townhall.core.secrets.registry import DECLARED, SettingSpec
from townhall.core.secrets.service import AppSettings

__all__ = ["DECLARED", "AppSettings", "Keyring", "SettingSpec", "UndecryptableSetting"]
