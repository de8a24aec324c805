-- Upstream requests, errors and 429s per provider per minute (issue #14): the consumer upserts one row per
-- provider it asked, once per invocation, in the D1 batch it already makes. Analytics Engine gets the same
-- numbers in its per-invocation point.
CREATE TABLE upstream_minutes (
  minute INTEGER NOT NULL,
  provider TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  throttled INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (minute, provider)
) WITHOUT ROWID;

-- Each job's billable operations (issue #13 item 5), summed per consumer invocation and upserted in the
-- same batch. The price estimate is computed on read from the price table in config.
CREATE TABLE job_costs (
  job_id TEXT PRIMARY KEY,
  invocations INTEGER NOT NULL DEFAULT 0,
  queue_sent INTEGER NOT NULL DEFAULT 0,
  queue_delivered INTEGER NOT NULL DEFAULT 0,
  queue_retried INTEGER NOT NULL DEFAULT 0,
  queue_acked INTEGER NOT NULL DEFAULT 0,
  kv_reads INTEGER NOT NULL DEFAULT 0,
  kv_writes INTEGER NOT NULL DEFAULT 0,
  d1_rows_read INTEGER NOT NULL DEFAULT 0,
  d1_rows_written INTEGER NOT NULL DEFAULT 0,
  openlibrary_requests INTEGER NOT NULL DEFAULT 0,
  googlebooks_requests INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
