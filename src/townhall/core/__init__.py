"""Shared infrastructure: one small package per concern, chosen by a settings URL."""
