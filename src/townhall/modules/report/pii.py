"""Masking of personal data (phones, e-mails, resident numbers, car plates) in public views."""

from __future__ import annotations

import re

# Korean resident registration number: YYMMDD-GNNNNNN (the hyphen is optional in the wild).
_RRN = re.compile(r"(?<!\d)\d{6}[-\s]?[1-8]\d{6}(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Korean mobile/landline (010-1234-5678, 02-123-4567, 01012345678) and +CC international.
_PHONE_KR = re.compile(r"(?<![\d-])0\d{1,2}[-.\s]?\d{3,4}[-.\s]?\d{4}(?![\d-])")
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}[\s.-]?(?:\(?\d{1,4}\)?[\s.-]?){2,4}\d{2,4}(?!\d)")
_PHONE_NANP = re.compile(r"(?<![\d-])\(?\d{3}\)?[-.\s]\d{3}[-.\s]\d{4}(?![\d-])")
# Car plates: 12가3456, 123가4567, and regional 서울12가3456.
_PLATE = re.compile(
    r"(?:(?:서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|전북|전남|경북|경남|제주)\s?)?"
    r"(?<!\d)\d{2,3}\s?[가-힣]\s?\d{4}(?!\d)"
)

MASK_RRN = "######-*******"
MASK_PHONE = "***-****-****"
MASK_EMAIL = "***@***"
MASK_PLATE = "**?****"


def mask_pii(text: str) -> str:
    """The text with every recognised personal datum replaced by a mask."""
    if not text:
        return text
    text = _RRN.sub(MASK_RRN, text)
    text = _EMAIL.sub(MASK_EMAIL, text)
    text = _PLATE.sub(MASK_PLATE, text)
    text = _PHONE_INTL.sub(MASK_PHONE, text)
    text = _PHONE_KR.sub(MASK_PHONE, text)
    return _PHONE_NANP.sub(MASK_PHONE, text)


def has_pii(text: str) -> bool:
    return mask_pii(text) != text
