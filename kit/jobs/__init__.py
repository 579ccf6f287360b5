"""kit.jobs: durable jobs in the service's Postgres, enqueued in the request's transaction."""

from kit.jobs.jobs import Job, Jobs, UnknownJob

__all__ = ["Job", "Jobs", "UnknownJob"]
