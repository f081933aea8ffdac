"""Shared layout templates, CSS and vendored JS bundles."""
