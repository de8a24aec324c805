import { AppError, badRequest } from "../errors";

/** 413 with the limit; `received` only when the client declared it (never an unbounded echo). */
export function tooLarge(limit: number, received?: number): AppError {
  return new AppError({
    code: "payload_too_large",
    message: `upload exceeds the limit of ${limit} bytes (${Math.round(limit / 1024 / 1024)} MiB)`,
    httpStatus: 413,
    kind: "permanent",
    details: { limitBytes: limit, ...(received === undefined ? {} : { receivedBytes: received }) },
  });
}

/** The Content-Length the client declared, if it is a plain number. */
export function declaredLength(request: Request): number | undefined {
  const raw = request.headers.get("Content-Length");
  if (raw === null || !/^\d{1,15}$/.test(raw.trim())) return undefined;
  return Number(raw);
}

/**
 * Yields the body's chunks, refusing (413) as soon as the declared or read size passes `maxBytes`.
 * A body that breaks off mid-way (client gone, broken chunking) is the client's doing: 400, not a 500.
 */
export async function* bodyChunks(
  request: Request,
  maxBytes: number,
  limit: number,
): AsyncGenerator<Uint8Array> {
  const declared = declaredLength(request);
  if (declared !== undefined && declared > maxBytes) throw tooLarge(limit, declared);
  if (!request.body) return;
  const reader = request.body.getReader();
  let total = 0;
  try {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        throw badRequest(
          "upload_interrupted",
          "the upload broke off before the whole body arrived; send it again",
          {
            reason: String(error instanceof Error ? error.message : error).slice(0, 200),
          },
        );
      }
      if (result.done) return;
      total += result.value.byteLength;
      if (total > maxBytes) throw tooLarge(limit);
      yield result.value;
    }
  } finally {
    // Refused or interrupted: read off a little of what is left so the client sees the answer.
    await drainRest(reader);
  }
}

/**
 * What is left of a refused upload is read and dropped, up to DRAIN_MAX_BYTES or DRAIN_MAX_MS, then the
 * stream is cancelled. A client still sending when the answer comes may otherwise see its connection reset
 * instead of the 4xx (wrangler's local proxy does exactly that); a big or stalled body is simply cut off.
 */
const DRAIN_MAX_BYTES = 1024 * 1024;
const DRAIN_MAX_MS = 2_000;

async function drainRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const deadline = Date.now() + DRAIN_MAX_MS;
  let drained = 0;
  try {
    while (drained <= DRAIN_MAX_BYTES) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()));
      });
      const read = reader.read();
      read.catch(() => {});
      const next = await Promise.race([read, timeout]).finally(() => clearTimeout(timer));
      // A stalled body is left as it is: the answer goes out, the runtime drops the request with it.
      if (next === "timeout") return;
      if (next.done) return;
      drained += next.value.byteLength;
    }
  } catch {
    return; // a broken stream has nothing left to drain
  }
  await reader.cancel().catch(() => {});
}

/** Drains a request body nobody read (refused before the route looked at it: auth, options, type). */
export async function drainUnreadBody(request: Request): Promise<void> {
  if (!request.body || request.bodyUsed || request.body.locked) return;
  await drainRest(request.body.getReader());
}
