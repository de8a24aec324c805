-- Jobs: one per upload. Terminal counters move in the same D1 batch as the task row they count,
-- guarded by the task's current state, so a redelivered message never counts twice.
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'completed_with_errors', 'cancelled')),
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
  works_cached INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  completed_at INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_recent ON jobs (created_at DESC);

-- Tasks: one per job x author key. status moves pending -> queued -> running -> done|skipped|failed|dead.
CREATE TABLE tasks (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  author_key TEXT NOT NULL,
  author_name TEXT NOT NULL,
  depth INTEGER NOT NULL,
  parent_key TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'queued', 'running', 'done', 'skipped', 'failed', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  -- Attempts that ended in this author's own failure (not a crash around it, not a deferral).
  failures INTEGER NOT NULL DEFAULT 0,
  -- Fencing token: bumped whenever a fresh message replaces the current one; older copies are dropped.
  generation INTEGER NOT NULL DEFAULT 0,
  -- generation * 1000 + delivery attempt of the last failure counted: duplicates of one attempt count once.
  failure_mark INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  works_count INTEGER,
  sources TEXT,
  -- JSON array of earlier terminal states this task was redriven from: [{status, error, attempts, at}].
  history TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  PRIMARY KEY (job_id, author_key)
) WITHOUT ROWID;
CREATE INDEX tasks_by_status ON tasks (job_id, status, depth);
CREATE INDEX tasks_pending ON tasks (status, updated_at) WHERE status = 'pending';

-- Works: merged records, the durable copy of what the KV cache holds.
CREATE TABLE works (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  authors TEXT NOT NULL,
  isbn13 TEXT,
  isbn13s TEXT NOT NULL,
  openlibrary_key TEXT,
  googlebooks_id TEXT,
  first_publish_year INTEGER,
  cover_id INTEGER,
  sources TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX works_isbn13 ON works (isbn13);

CREATE TABLE author_works (
  author_key TEXT NOT NULL,
  work_id TEXT NOT NULL,
  PRIMARY KEY (author_key, work_id)
) WITHOUT ROWID;

-- Events: one row per consumer invocation (local stand-in for Analytics Engine, and the dashboard's source).
CREATE TABLE warm_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  queue TEXT NOT NULL,
  messages INTEGER NOT NULL,
  done INTEGER NOT NULL,
  skipped INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  retried INTEGER NOT NULL,
  works INTEGER NOT NULL,
  subrequests INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX warm_events_at ON warm_events (at);
