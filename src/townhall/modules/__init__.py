"""The apps of townhall; each registers itself in `registry.APPS`."""
