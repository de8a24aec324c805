const HOUR_MS = 60 * 60 * 1000;

export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** Adds one request's cache outcome to its hour's row. */
export function recordCacheOutcomeStatement(
  db: D1Database,
  route: string,
  outcome: { hits: number; misses: number },
  now: number,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO cache_stats (hour, route, hits, misses) VALUES (?1, ?2, ?3, ?4)
       ON CONFLICT (hour, route) DO UPDATE SET hits = hits + excluded.hits, misses = misses + excluded.misses`,
    )
    .bind(hourOf(now), route, outcome.hits, outcome.misses);
}

export interface HourlyCacheStats {
  hour: number;
  hits: number;
  misses: number;
}

export async function cacheStatsSince(db: D1Database, since: number): Promise<HourlyCacheStats[]> {
  const { results } = await db
    .prepare(
      `SELECT hour, SUM(hits) AS hits, SUM(misses) AS misses FROM cache_stats
       WHERE hour >= ?1 GROUP BY hour ORDER BY hour`,
    )
    .bind(hourOf(since))
    .all<HourlyCacheStats>();
  return results;
}
