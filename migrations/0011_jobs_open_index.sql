-- The upload's backlog check (issue #13 item 3) sums the open jobs' task counters on every upload: this
-- partial index holds only the jobs still queued or running, so the check reads those rows and no others.
CREATE INDEX jobs_open ON jobs (status) WHERE status IN ('queued', 'running');
