"""The eventsync engine (seed 001): server-authoritative JSON documents, events, snapshots."""
