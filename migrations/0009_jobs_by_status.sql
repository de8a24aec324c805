-- Admission (issue #13) reads the running jobs on every pass (the consumer after each batch, each job's warm
-- stage every poll, the cron sweep): an index on the job's status keeps that a lookup of the few running
-- jobs instead of a scan of every job ever uploaded.
CREATE INDEX jobs_by_status ON jobs (status);
