"""kit.jobs: durable jobs in the service's Postgres, enqueued in the request's transaction."""

from kit.jobs.admin import add_job_routes
from kit.jobs.jobs import Jobs, UnknownJob
from kit.jobs.model import Job

__all__ = ["Job", "Jobs", "UnknownJob", "add_job_routes"]
