-- Read-API cache outcomes, one row per hour and route, incremented once per request (never a row per key).
CREATE TABLE cache_stats (
  hour INTEGER NOT NULL,
  route TEXT NOT NULL,
  hits INTEGER NOT NULL DEFAULT 0,
  misses INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (hour, route)
) WITHOUT ROWID;
