import { warmEventsByHour } from "../db/analytics";
import type { EventsBackend } from "./backend";

/** Local and test backend: the consumer writes one warm_events row per invocation beside its AE point. */
export function d1Events(db: D1Database): EventsBackend {
  return {
    name: "d1",
    async warmByHour(start) {
      const rows = await warmEventsByHour(db, start);
      return rows.map((r) => ({
        hour: r.hour,
        invocations: r.invocations,
        authorsProcessed: r.authors_processed,
        worksCached: r.works_cached,
        failed: r.failed,
        retried: r.retried,
        subrequests: r.subrequests,
      }));
    },
  };
}
