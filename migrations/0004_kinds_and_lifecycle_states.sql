-- Widens the state machines for the lifecycle (cancel, pause, failed gates) and the work-item kinds
-- (ISBN items next to authors; refresh jobs next to uploads). SQLite cannot alter a CHECK, so both tables
-- are rebuilt. The new tasks table references jobs_new, so dropping the old tables orphans nothing; renaming
-- jobs_new to jobs rewrites that reference.
PRAGMA defer_foreign_keys = true;

CREATE TABLE jobs_new (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL DEFAULT 'upload' CHECK (kind IN ('upload', 'refresh')),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'completed', 'completed_with_errors', 'cancelled', 'failed')),
  max_depth INTEGER NOT NULL CHECK (max_depth BETWEEN 0 AND 3),
  priority TEXT NOT NULL DEFAULT 'normal',
  format TEXT NOT NULL,
  filename TEXT,
  idempotency_key TEXT,
  request_hash TEXT NOT NULL,
  rows_total INTEGER NOT NULL DEFAULT 0,
  duplicates_skipped INTEGER NOT NULL DEFAULT 0,
  root_tasks INTEGER NOT NULL DEFAULT 0,
  total_tasks INTEGER NOT NULL DEFAULT 0,
  done_count INTEGER NOT NULL DEFAULT 0,
  skipped_count INTEGER NOT NULL DEFAULT 0,
  failed_count INTEGER NOT NULL DEFAULT 0,
  dead_count INTEGER NOT NULL DEFAULT 0,
  cancelled_count INTEGER NOT NULL DEFAULT 0,
  works_cached INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  completed_at INTEGER,
  updated_at INTEGER NOT NULL,
  read_link_version INTEGER NOT NULL DEFAULT 0
);
INSERT INTO jobs_new (id, status, max_depth, priority, format, filename, idempotency_key, request_hash,
  rows_total, duplicates_skipped, root_tasks, total_tasks, done_count, skipped_count, failed_count,
  dead_count, works_cached, created_at, started_at, completed_at, updated_at, read_link_version)
SELECT id, status, max_depth, priority, format, filename, idempotency_key, request_hash,
  rows_total, duplicates_skipped, root_tasks, total_tasks, done_count, skipped_count, failed_count,
  dead_count, works_cached, created_at, started_at, completed_at, updated_at, read_link_version
FROM jobs;

CREATE TABLE tasks_new (
  job_id TEXT NOT NULL REFERENCES jobs_new (id),
  -- Item key: the author's normalised name key, or `isbn:` + ISBN-13 for an ISBN item.
  author_key TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'author' CHECK (kind IN ('author', 'isbn')),
  author_name TEXT NOT NULL,
  depth INTEGER NOT NULL,
  parent_key TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'queued', 'running', 'done', 'skipped', 'failed', 'dead', 'cancelled')),
  attempts INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0,
  generation INTEGER NOT NULL DEFAULT 0,
  failure_mark INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  works_count INTEGER,
  sources TEXT,
  history TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  PRIMARY KEY (job_id, author_key)
) WITHOUT ROWID;
INSERT INTO tasks_new (job_id, author_key, author_name, depth, parent_key, status, attempts, failures,
  generation, failure_mark, error, works_count, sources, history, created_at, updated_at, finished_at)
SELECT job_id, author_key, author_name, depth, parent_key, status, attempts, failures,
  generation, failure_mark, error, works_count, sources, history, created_at, updated_at, finished_at
FROM tasks;

DROP TABLE tasks;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE tasks_new RENAME TO tasks;

CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_recent ON jobs (created_at DESC);
CREATE INDEX tasks_by_status ON tasks (job_id, status, depth);
CREATE INDEX tasks_pending ON tasks (status, updated_at) WHERE status = 'pending';
