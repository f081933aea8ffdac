"""Check a ZIP container (XLSX, DOCX, ...) before a library inflates it: zip-bomb guard."""

from __future__ import annotations

import io
import zipfile

from townhall.core.errors import BadRequest, PayloadTooLarge


def check_zip(
    data: bytes,
    *,
    max_total_bytes: int,
    max_ratio: float,
    max_members: int = 10_000,
    what: str = "file",
) -> None:
    """Refuse a ZIP whose declared sizes or compression ratio betray a bomb (413), or no ZIP (400).

    The central directory's sizes are what the library will inflate; a lying header is caught
    later by zipfile itself (it checks each member's CRC and size while reading).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BadRequest(f"not a readable {what} (not a ZIP container)") from exc
    with archive:
        members = archive.infolist()
        if len(members) > max_members:
            raise PayloadTooLarge(f"the {what} has more than {max_members} parts")
        total = 0
        for member in members:
            total += member.file_size
            if total > max_total_bytes:
                raise PayloadTooLarge(
                    f"the {what} unpacks to more than {max_total_bytes} bytes (zip bomb?)"
                )
            ratio = member.file_size / max(member.compress_size, 1)
            if member.file_size > 1024 * 1024 and ratio > max_ratio:
                raise PayloadTooLarge(
                    f"{member.filename} in the {what} is compressed {ratio:.0f}:1 (zip bomb?)"
                )
