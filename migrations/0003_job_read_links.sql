-- Per-job read links are an HMAC of (job id, version); bumping the version revokes the job's link.
ALTER TABLE jobs ADD COLUMN read_link_version INTEGER NOT NULL DEFAULT 0;
