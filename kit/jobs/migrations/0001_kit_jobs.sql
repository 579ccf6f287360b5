-- kit.jobs: durable jobs, one row each. Applied with the service's migrations (scope kit_jobs).
-- A job is ready (waiting for run_at), running (leased to one worker until lease_until),
-- done, or dead (max_attempts reached; last_error says why). A ready job with attempts > 0 is
-- a retry waiting for its backoff.

CREATE TABLE kit_jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue        text NOT NULL,
    name         text NOT NULL,
    key          text,                        -- idempotency key: one job per (name, key)
    payload      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'ready'
                 CHECK (state IN ('ready', 'running', 'done', 'dead')),
    attempts     integer NOT NULL DEFAULT 0,  -- attempts started, this one included
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    run_at       timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz,
    lease_owner  text,                        -- the instance running it (with attempts: one run)
    last_error   text,
    request_id   text,                        -- of the request that enqueued it
    traceparent  text,                        -- its trace context (W3C), when traced
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz
);

CREATE UNIQUE INDEX kit_jobs_key ON kit_jobs (name, key) WHERE key IS NOT NULL;
-- what workers claim, oldest due first
CREATE INDEX kit_jobs_ready ON kit_jobs (queue, run_at, id) WHERE state = 'ready';
-- leases to renew or reclaim
CREATE INDEX kit_jobs_running ON kit_jobs (lease_until) WHERE state = 'running';
-- the admin view and the gauges: everything not done
CREATE INDEX kit_jobs_pending ON kit_jobs (queue, state) WHERE state <> 'done';
-- the purge of old done jobs
CREATE INDEX kit_jobs_finished ON kit_jobs (finished_at) WHERE state = 'done';
