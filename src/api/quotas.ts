import type { Config } from "../config";
import { quotaReport } from "../sources/rate-limit";

/** The providers' daily quotas as the provider Durable Objects keep them; null when they cannot be read. */
export async function providerQuotas(env: Env, config: Config) {
  if (!env.RATE_LIMITER) return null;
  try {
    return await quotaReport(env.RATE_LIMITER, config);
  } catch (error) {
    console.warn(JSON.stringify({ msg: "provider quotas unavailable", error: String(error) }));
    return null;
  }
}
