"""Reports app (seed 004): civic issue reports with photos, AI triage, routing and Open311."""
