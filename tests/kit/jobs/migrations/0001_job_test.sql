-- What the jobs test app's handlers record. Two runs of one job that overlap in time violate
-- the exclusion constraint: "never two runs at once" is checked by Postgres itself.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE things (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE job_runs (
    job_id  bigint NOT NULL,
    attempt integer NOT NULL,
    pid     integer NOT NULL,
    during  tstzrange NOT NULL,
    running integer NOT NULL,  -- jobs of its queue running when it started
    EXCLUDE USING gist (job_id WITH =, during WITH &&)
);

CREATE TABLE ticks (
    period  text NOT NULL,
    pid     integer NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
