/**
 * The one place that decides what a failure means.
 *
 * - The API turns any error into `{error:{code,message,details?}}` with `httpStatus`.
 * - The consumers ask `classifyFailure()` whether to retry (transient) or give up (permanent).
 */

export type FailureKind = "transient" | "permanent";

/** Every error code Kindling answers or records, in one place (the README lists what each means). */
export type ErrorCode =
  // Uploads and the API's input
  | "invalid_request"
  | "invalid_option"
  | "invalid_json"
  | "invalid_base64"
  | "invalid_multipart"
  | "invalid_encoding"
  | "invalid_cursor"
  | "invalid_isbn"
  | "invalid_row"
  | "unsupported_media_type"
  | "payload_too_large"
  | "too_many_rows"
  | "too_many_parts"
  | "multiple_files"
  | "missing_file"
  | "upload_interrupted"
  | "empty_csv"
  | "unreadable_csv"
  | "row_too_long"
  | "no_author_column"
  | "no_rows"
  | "no_authors"
  | "idempotency_key_reused"
  | "backlog_full"
  | "unauthorized"
  | "auth_not_configured"
  | "not_found"
  | "nothing_to_retry"
  | "job_finished"
  | "stage_blocked"
  | "manifest_not_published"
  | "book_not_found"
  | "author_not_found"
  | "read_allowance_exceeded"
  | "http_error"
  | "analytics_unavailable"
  // Warming: the sources and our own limits
  | "upstream_unavailable"
  | "upstream_rate_limited"
  | "upstream_rejected"
  | "upstream_malformed"
  | "no_sources"
  | "timeout"
  | "upstream_timeout"
  | "upstream_network_error"
  | "cache_write_failed"
  | "invalid_task"
  // Control flow: the work was not attempted (see DeferError)
  | "budget_exhausted"
  | "breaker_open"
  | "rate_limited_locally"
  | "providers_held_back"
  // A provider's daily quota is spent: the source is skipped until its reset (see QuotaExhaustedError)
  | "quota_exhausted"
  | "internal_error";

export interface ErrorDetails {
  [key: string]: unknown;
}

/** An error with a stable machine-readable code, an HTTP status and a retry classification. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly kind: FailureKind;
  readonly details: ErrorDetails | undefined;
  /** Seconds the caller should wait before trying again (Retry-After, breaker cool-down). */
  readonly retryAfterSeconds: number | undefined;

  constructor(opts: {
    code: ErrorCode;
    message: string;
    httpStatus?: number;
    kind?: FailureKind;
    details?: ErrorDetails;
    retryAfterSeconds?: number;
    cause?: unknown;
  }) {
    super(opts.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "AppError";
    this.code = opts.code;
    this.httpStatus = opts.httpStatus ?? 500;
    this.kind = opts.kind ?? (this.httpStatus >= 500 ? "transient" : "permanent");
    this.details = opts.details;
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}

/**
 * Control flow, not a failure: the work was not attempted because our own limits held it back (the
 * invocation's budget is spent, a provider's breaker is open or its request slots are booked). The item
 * goes round again later without using its retry allowance. Checked with `instanceof`.
 */
export class DeferError extends AppError {
  readonly source: string | undefined;

  constructor(opts: {
    code: "budget_exhausted" | "breaker_open" | "rate_limited_locally" | "providers_held_back";
    message: string;
    retryAfterSeconds: number;
    source?: string;
  }) {
    super({ ...opts, httpStatus: 503, kind: "transient" });
    this.name = "DeferError";
    this.source = opts.source;
  }
}

/**
 * A provider's daily quota is spent (our own count, or the provider said so): the source is skipped until
 * `resetAt`, and an item finishes with the sources left. Not a failure of the item, so never retried for it.
 */
export class QuotaExhaustedError extends AppError {
  readonly source: string;
  readonly resetAt: number;
  /** The provider answered so (rather than our own count refusing the request). */
  readonly byProvider: boolean;

  constructor(opts: { source: string; resetAt: number; message?: string; byProvider?: boolean }) {
    super({
      code: "quota_exhausted",
      message:
        opts.message ?? `${opts.source} daily quota is spent until ${new Date(opts.resetAt).toISOString()}`,
      httpStatus: 503,
      kind: "permanent",
    });
    this.name = "QuotaExhaustedError";
    this.source = opts.source;
    this.resetAt = opts.resetAt;
    this.byProvider = opts.byProvider ?? false;
  }
}

/** Bad input from a client: always a 4xx, never retried. */
export function badRequest(
  code: ErrorCode,
  message: string,
  details?: ErrorDetails,
  httpStatus = 400,
): AppError {
  return new AppError({ code, message, httpStatus, kind: "permanent", details });
}

export function notFound(what: string, id: string): AppError {
  return new AppError({
    code: "not_found",
    message: `${what} ${id} not found`,
    httpStatus: 404,
    kind: "permanent",
    details: { [what.toLowerCase()]: id },
  });
}

/** A failure talking to an upstream book API (Open Library, Google Books). */
export class UpstreamError extends AppError {
  readonly source: string;
  readonly upstreamStatus: number | undefined;

  constructor(opts: {
    source: string;
    code: ErrorCode;
    message: string;
    kind: FailureKind;
    upstreamStatus?: number;
    retryAfterSeconds?: number;
    cause?: unknown;
  }) {
    super({
      code: opts.code,
      message: opts.message,
      httpStatus: 502,
      kind: opts.kind,
      retryAfterSeconds: opts.retryAfterSeconds,
      details: { source: opts.source, upstreamStatus: opts.upstreamStatus },
      cause: opts.cause,
    });
    this.name = "UpstreamError";
    this.source = opts.source;
    this.upstreamStatus = opts.upstreamStatus;
  }
}

/** Parses a Retry-After header (delta-seconds or HTTP date) into whole seconds, if present. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/**
 * Classifies an upstream HTTP status. 429 and 5xx are worth retrying; 408 is a timeout.
 * Other 4xx mean "this request for this author will never work".
 */
export function upstreamStatusError(
  source: string,
  status: number,
  retryAfterSeconds?: number,
): UpstreamError {
  const transient = status === 408 || status === 429 || status >= 500;
  return new UpstreamError({
    source,
    code: status === 429 ? "upstream_rate_limited" : transient ? "upstream_unavailable" : "upstream_rejected",
    message: `${source} answered HTTP ${status}`,
    kind: transient ? "transient" : "permanent",
    upstreamStatus: status,
    retryAfterSeconds,
  });
}

export interface ClassifiedFailure {
  kind: FailureKind;
  code: ErrorCode;
  message: string;
  retryAfterSeconds: number | undefined;
}

/**
 * Decides permanent vs transient for anything thrown while warming.
 * Unknown errors (bugs, runtime hiccups, D1/KV blips) are transient: retrying is safe because every
 * transition is idempotent, and the dead-letter queue bounds how often.
 */
export function classifyFailure(error: unknown): ClassifiedFailure {
  if (error instanceof AppError) {
    return {
      kind: error.kind,
      code: error.code,
      message: error.message,
      retryAfterSeconds: error.retryAfterSeconds,
    };
  }
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return { kind: "transient", code: "timeout", message: error.message, retryAfterSeconds: undefined };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { kind: "transient", code: "internal_error", message, retryAfterSeconds: undefined };
}
