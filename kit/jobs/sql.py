"""The statements of kit.jobs: each one round trip, no session state (PgBouncer-safe)."""

ENQUEUE = """
INSERT INTO kit_jobs (queue, name, key, payload, max_attempts, run_at, request_id, traceparent)
VALUES ($1, $2, $3, $4::jsonb, $5, coalesce($6, now()), $7, $8)
ON CONFLICT (name, key) WHERE key IS NOT NULL DO NOTHING
RETURNING id
"""
EXISTING = "SELECT id FROM kit_jobs WHERE name = $1 AND key = $2"
NOTIFY = "SELECT pg_notify('kit_jobs', $1)"
CHANNEL = "kit_jobs"

# Oldest due first; rows another worker is claiming are skipped, not waited for.
CLAIM = """
WITH picked AS (
    SELECT id FROM kit_jobs
    WHERE queue = $1 AND state = 'ready' AND run_at <= now()
    ORDER BY run_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE kit_jobs AS j
SET state = 'running', attempts = j.attempts + 1, started_at = now(),
    lease_until = now() + make_interval(secs => $3), lease_owner = $4
FROM picked WHERE j.id = picked.id
RETURNING j.id, j.name, j.key, j.payload::text AS payload, j.attempts, j.max_attempts,
          j.request_id, j.traceparent, j.created_at
"""
# A queue with a limit across instances: claims are serialized per queue for the transaction
# (a transaction-level lock: nothing outlives it, so it works through a transaction pooler).
LOCK_QUEUE = "SELECT pg_advisory_xact_lock(hashtext('kit_jobs:' || $1))"
RUNNING = "SELECT count(*) FROM kit_jobs WHERE queue = $1 AND state = 'running'"

RENEW = """
UPDATE kit_jobs AS j SET lease_until = now() + make_interval(secs => $3)
FROM unnest($1::bigint[], $2::int[]) AS r(id, attempts)
WHERE j.id = r.id AND j.attempts = r.attempts AND j.lease_owner = $4 AND j.state = 'running'
RETURNING j.id
"""
# Jobs whose worker stopped renewing (killed, out of memory, a lost node): ready again, or
# dead when that was the last attempt.
REAP = """
WITH expired AS (
    SELECT id FROM kit_jobs WHERE state = 'running' AND lease_until < now()
    FOR UPDATE SKIP LOCKED
)
UPDATE kit_jobs AS j
SET state = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'ready' END,
    finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
    run_at = now(), lease_until = NULL,
    last_error = 'attempt ' || j.attempts || ': its lease expired (the worker '
        || coalesce(j.lease_owner, '?') || ' was killed, lost or stalled)'
FROM expired WHERE j.id = expired.id
RETURNING j.id, j.name, j.attempts, j.state, j.request_id
"""
_MINE = "id = $1 AND attempts = $2 AND lease_owner = $3 AND state = 'running'"
# Many done jobs in one statement: a worker acknowledges its finished jobs in batches.
COMPLETE = """
UPDATE kit_jobs AS j SET state = 'done', finished_at = now(), lease_until = NULL
FROM unnest($1::bigint[], $2::int[]) AS r(id, attempts)
WHERE j.id = r.id AND j.attempts = r.attempts AND j.lease_owner = $3 AND j.state = 'running'
RETURNING j.id
"""
FAIL = f"""
UPDATE kit_jobs
SET state = CASE WHEN attempts >= max_attempts OR $4 THEN 'dead' ELSE 'ready' END,
    finished_at = CASE WHEN attempts >= max_attempts OR $4 THEN now() END,
    run_at = now() + make_interval(secs => $5), last_error = $6, lease_until = NULL
WHERE {_MINE}
RETURNING state
"""
# Given back at shutdown: the attempt does not count.
RELEASE = f"""
UPDATE kit_jobs
SET state = 'ready', attempts = attempts - 1, run_at = now(), lease_until = NULL,
    lease_owner = NULL
WHERE {_MINE}
"""
PURGE = """
DELETE FROM kit_jobs WHERE id IN (
    SELECT id FROM kit_jobs WHERE state = 'done' AND finished_at < now() - make_interval(secs => $1)
    LIMIT 1000
)
"""

GAUGES = """
SELECT queue,
       count(*) FILTER (WHERE state = 'ready' AND attempts = 0 AND run_at <= now()) AS ready,
       count(*) FILTER (WHERE state = 'ready' AND attempts = 0 AND run_at > now()) AS scheduled,
       count(*) FILTER (WHERE state = 'ready' AND attempts > 0) AS retrying,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       coalesce(extract(epoch FROM now() - min(run_at)
                FILTER (WHERE state = 'ready' AND run_at <= now())), 0)::float8 AS oldest
FROM kit_jobs WHERE state <> 'done' GROUP BY queue ORDER BY queue
"""

LIST = """
SELECT id, queue, name, key, state, attempts, max_attempts, run_at, lease_until, lease_owner,
       last_error, request_id, created_at, started_at, finished_at
FROM kit_jobs
WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR queue = $2)
  AND ($3::text IS NULL OR name = $3) AND ($4::bigint IS NULL OR id < $4)
ORDER BY id DESC
LIMIT $5
"""
GET = "SELECT state FROM kit_jobs WHERE id = $1"
RETRY = """
UPDATE kit_jobs SET state = 'ready', attempts = 0, run_at = now(), finished_at = NULL,
       lease_owner = NULL
WHERE id = $1 AND state = 'dead'
RETURNING id
"""
