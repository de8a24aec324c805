-- The job lifecycle (issue #12): one row per job x stage, written by the job's Workflow instance and the
-- control routes, so a job's stages are read with one cheap query; and the job's NDJSON log, an
-- append-only table whose autoincrement id is the `since` cursor for tailing.
CREATE TABLE job_stages (
  job_id TEXT NOT NULL,
  stage TEXT NOT NULL CHECK (stage IN ('ingest', 'warm', 'verify', 'publish')),
  position INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'PENDING'
    CHECK (status IN ('PENDING', 'RUNNING', 'SUCCESS', 'FAILED', 'SKIPPED', 'CANCELLED')),
  started_at INTEGER,
  ended_at INTEGER,
  -- Why a stage failed: the name of the check that refused it, and what it saw.
  message TEXT,
  -- JSON object of the stage's counts.
  counts TEXT,
  -- The stage's artifact in R2 and its sha256 (the next stage's gate re-reads and re-checks it).
  artifact_key TEXT,
  artifact_sha256 TEXT,
  artifact_bytes INTEGER,
  -- Last sign of life of a long stage (warm's checks): the cron restarts an instance whose running stage
  -- has gone quiet (a runtime restart can leave a local engine idle mid-step).
  heartbeat_at INTEGER,
  PRIMARY KEY (job_id, stage)
) WITHOUT ROWID;

CREATE TABLE job_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  -- stage_start | stage_end | gate_failed | readmitted | operator | error
  type TEXT NOT NULL,
  stage TEXT,
  -- JSON object: counts, error summaries, the operator action.
  data TEXT
);
CREATE INDEX job_log_by_job ON job_log (job_id, id);

-- The sha256 of the uploaded file alone (requestHash also covers the options), for the manifest.
ALTER TABLE jobs ADD COLUMN input_sha256 TEXT;
