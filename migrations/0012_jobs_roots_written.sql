-- An upload's depth-0 tasks are written by its ingest stage after the 202 (issue #12, ingest speed), in
-- slices of a few thousand rows. Until the last slice is in, the job must not complete (its written tasks
-- may all be finished while more are still to come): 0 while ingest writes them, 1 once they are all
-- written. Jobs created before this change wrote their tasks with the job row: 1.
ALTER TABLE jobs ADD COLUMN roots_written INTEGER NOT NULL DEFAULT 1;
