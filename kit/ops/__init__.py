"""Operations and observability: health and readiness, draining, logs, metrics (kit's and a
service's own), the event-loop monitor, tracing, the /admin surface, and the process and port
checks ``kit serve`` makes. The built-in middleware they install is in kit.middleware."""
