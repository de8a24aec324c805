/**
 * A refresh job's id is a UUIDv8 (RFC 9562's version for application-defined layouts; uploads get v4 from
 * crypto.randomUUID). So a warm message says by itself that it belongs to a refresh, whichever path built
 * it from its task row (upload send, sweeper, admission, redrive), and the consumer needs no lookup to let
 * it past the processed marker. jobs.kind = 'refresh' stays the durable record.
 */
export function newRefreshJobId(): string {
  const hex = crypto.randomUUID().replace(/-/g, "");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const REFRESH_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function isRefreshJob(jobId: string): boolean {
  return REFRESH_ID.test(jobId);
}
