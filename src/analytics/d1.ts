import { warmEventsByHour } from "../db/analytics";
import { requestsByDay, upstreamByMinute } from "../db/usage";
import { type EventsBackend, type ProviderDay, toHourlyWarm, type UpstreamMinute } from "./backend";

/** Local and test backend: the consumer writes one warm_events row per invocation beside its AE point. */
export function d1Events(db: D1Database): EventsBackend {
  return {
    name: "d1",
    async warmByHour(start) {
      const rows = await warmEventsByHour(db, start);
      return rows.map(toHourlyWarm);
    },
    async requestsByDay(start) {
      const rows = await requestsByDay(db, start);
      return rows.flatMap((r): ProviderDay[] =>
        r.provider === "openlibrary" || r.provider === "googlebooks" ? [{ ...r, provider: r.provider }] : [],
      );
    },
    async upstreamByMinute(start) {
      const rows = await upstreamByMinute(db, start);
      return rows.flatMap((r): UpstreamMinute[] =>
        r.provider === "openlibrary" || r.provider === "googlebooks" ? [{ ...r, provider: r.provider }] : [],
      );
    },
  };
}
