"""Docs app (seed 000, service A): Notion-like workspaces of nested pages edited live."""
