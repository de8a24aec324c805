-- Admission keeps a window per work-item kind (authors and ISBNs go to queues of their own, each with its own
-- lookahead): the claim filters on kind and walks pending tasks in (depth, author_key) order, so the index
-- that served it gains both columns. Same number of indexes: task inserts cost what they did.
DROP INDEX tasks_by_status;
CREATE INDEX tasks_by_status ON tasks (job_id, status, kind, depth, author_key);
