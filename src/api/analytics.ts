import { Hono } from "hono";
import { z } from "zod";
import { cacheStatsSince } from "../db/cache-stats";
import { requireReader } from "./auth";
import type { AppEnv } from "./context";
import { validate } from "./validation";

const hoursQuery = z.object({
  hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(24),
});

const rate = (hits: number, misses: number) =>
  hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 1000) / 1000;

/** Read-API hit rate per hour (local numbers come from D1; production can also query Analytics Engine). */
export const analyticsApi = new Hono<AppEnv>().get(
  "/cache",
  requireReader,
  validate("query", hoursQuery),
  async (c) => {
    const { hours } = c.req.valid("query");
    const now = Date.now();
    const rows = await cacheStatsSince(c.env.DB, now - (hours - 1) * 3_600_000);
    const hits = rows.reduce((n, r) => n + Number(r.hits), 0);
    const misses = rows.reduce((n, r) => n + Number(r.misses), 0);
    return c.json({
      hours,
      totals: { hits, misses, rate: rate(hits, misses) },
      byHour: rows.map((r) => ({
        hour: new Date(r.hour).toISOString(),
        hits: Number(r.hits),
        misses: Number(r.misses),
        rate: rate(Number(r.hits), Number(r.misses)),
      })),
    });
  },
);
