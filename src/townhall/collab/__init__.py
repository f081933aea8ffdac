"""Collab engine (seed 000): Yjs documents, rooms, signaling, write-back buffer."""
