"""Prometheus metrics shared by every package."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "townhall_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "townhall_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_ERRORS = Counter("townhall_http_errors_total", "HTTP 5xx responses", ["route"])
# Jobs (core/jobs): event = queued, started, succeeded, retried, dead, swept.
JOBS = Counter("townhall_jobs_total", "Job lifecycle events", ["task", "event"])
JOBS_RUNNING = Gauge("townhall_jobs_running", "Jobs running now in this process")
PUBSUB_MESSAGES = Counter("townhall_pubsub_messages_total", "Pub/sub messages", ["direction"])
OPEN_CONNECTIONS = Gauge("townhall_open_connections", "Open WebSocket/SSE connections", ["kind"])
