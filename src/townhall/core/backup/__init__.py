"""`townhall backup` / `townhall restore`: the database and every stored object in one archive."""

from townhall.core.backup.database import BackupError
from townhall.core.backup.service import (
    BackupResult,
    Manifest,
    RestoreResult,
    create_backup,
    progress_bar,
    restore_backup,
)

__all__ = [
    "BackupError",
    "BackupResult",
    "Manifest",
    "RestoreResult",
    "create_backup",
    "progress_bar",
    "restore_backup",
]
