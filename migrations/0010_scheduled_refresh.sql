-- Scheduled refresh (issue #13 item 4).
-- Each merged work's content hash, written with the row by the consumer after its KV entries landed: a
-- refresh compares the freshly merged record's hash with it and rewrites the work's KV entries only when
-- they differ.
ALTER TABLE works ADD COLUMN content_hash TEXT;

-- One row per warmed item (an author's works list, an ISBN item's edition): when its own KV entry was last
-- written and when that entry expires (written_at + its TTL), when an upload last asked for it, and when a
-- refresh last re-warmed it. The cron selects from here what expires within the horizon.
CREATE TABLE cached_items (
  -- The task's item key: the author's normalised key, or `isbn:` + ISBN-13.
  item_key TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('author', 'isbn')),
  -- The name a warm message needs (the author as the upload spelled it, or the ISBN-13).
  name TEXT NOT NULL,
  written_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  requested_at INTEGER NOT NULL,
  refreshed_at INTEGER
) WITHOUT ROWID;
CREATE INDEX cached_items_expiry ON cached_items (expires_at);
