"""Links app (seed 002): instant save, scrape -> thumbnail -> tag pipeline, search, sync."""
