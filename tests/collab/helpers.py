"""Yjs helpers for collab tests."""

from __future__ import annotations

import base64
from typing import Any

import pycrdt


def text_update(text: str, *, doc: pycrdt.Doc[Any] | None = None, root: str = "text") -> bytes:
    """A Yjs update that appends `text` to the Text root of `doc` (a new doc by default)."""
    doc = doc or pycrdt.Doc()
    before = doc.get_state()
    ytext = doc.get(root, type=pycrdt.Text)
    ytext += text
    return doc.get_update(before)


def text_of(state: bytes, root: str = "text") -> str:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(state)
    return str(doc.get(root, type=pycrdt.Text))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
