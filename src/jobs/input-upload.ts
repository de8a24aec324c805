import { hexOf, sha256Hex } from "./artifacts";
import type { Artifact } from "./stages";

/** R2's smallest multipart part (every part but the last); all full parts are exactly this size. */
export const PART_BYTES = 5 * 1024 * 1024;
/** Parts sent at once: the worker holds at most this many parts plus the one filling. */
const PARTS_IN_FLIGHT = 2;

/**
 * The upload's file on its way to R2 (`jobs/<id>/input`) while the parser reads it: the bytes are hashed and
 * cut into fixed-size parts as they pass, so the worker holds at most one part being filled and two being
 * sent, whatever the file's size (UPLOAD_MAX_BYTES bounds the file, not memory). A file smaller than one part
 * is one `put` at completion (R2 checks its sha256); a larger one is a multipart upload, completed only once
 * the job is accepted — a refused upload aborts it, so nothing is stored.
 */
export interface InputUpload {
  /** The same chunks, each hashed and stored (sending a full part waits for the previous one: backpressure). */
  tee(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array>;
  /** sha256 of the whole file: call once the file was read to its end. */
  digest(): Promise<string>;
  /**
   * Stores the rest and makes the object visible; the artifact names its key and the file's sha256 and size
   * (`storedBytes`: its gzip-compressed size in R2).
   */
  complete(): Promise<Artifact & { storedBytes: number }>;
  /** Leaves nothing stored: aborts an unfinished upload, deletes a completed one. Never throws. */
  discard(): Promise<void>;
}

export function inputUpload(
  bucket: R2Bucket,
  key: string,
  contentType: string,
  partBytes = PART_BYTES,
): InputUpload {
  const hasher = new crypto.DigestStream("SHA-256");
  const hashWriter = hasher.getWriter();
  // A discarded upload aborts the hash, which rejects `digest`: expected, not an unhandled error.
  hasher.digest.catch(() => {});
  // The bytes not yet sent, as they arrived (a small file never allocates a whole part).
  const pending: Uint8Array[] = [];
  let filled = 0;
  let total = 0;
  let multipart: R2MultipartUpload | null = null;
  // Parts being sent, oldest first; at most PARTS_IN_FLIGHT, so reading waits only when R2 falls behind.
  const sending: Promise<R2UploadedPart>[] = [];
  const sent: R2UploadedPart[] = [];
  let partNumber = 0;
  let sha256: Promise<string> | null = null;
  let state: "open" | "completing" | "completed" | "discarded" = "open";
  const discarded = () => state === "discarded";

  /** Sends the bytes as the next part; waits for the oldest part first when PARTS_IN_FLIGHT are out. */
  async function sendPart(bytes: Uint8Array): Promise<void> {
    if (discarded()) return;
    multipart ??= await bucket.createMultipartUpload(key, {
      httpMetadata: { contentType, contentEncoding: "gzip" },
    });
    if (sending.length >= PARTS_IN_FLIGHT) sent.push(await (sending.shift() as Promise<R2UploadedPart>));
    partNumber += 1;
    const part = multipart.uploadPart(partNumber, bytes);
    // Awaited later or by complete(); a discard that never awaits it must not leave it unhandled.
    part.catch(() => {});
    sending.push(part);
  }

  // The file is stored gzip-compressed: what is hashed is the file itself, what is cut into parts (and
  // counted in `storedBytes`) is the compressor's output, read by `pumped` as it comes.
  const gzip = new CompressionStream("gzip");
  const gzipWriter = gzip.writable.getWriter();
  let storedBytes = 0;
  const pumped = (async () => {
    for await (const out of gzip.readable as unknown as AsyncIterable<Uint8Array>) {
      if (discarded()) continue;
      pending.push(out);
      filled += out.byteLength;
      storedBytes += out.byteLength;
      while (filled >= partBytes) await sendPart(takePending(partBytes));
    }
  })();
  // A failing compressor rejects the pump: the caller's complete() sees it; it is never unhandled.
  pumped.catch(() => {});

  async function* tee(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    for await (const chunk of chunks) {
      if (state !== "open") throw new Error("the input upload is no longer open");
      await Promise.all([hashWriter.write(chunk), gzipWriter.write(chunk)]);
      total += chunk.byteLength;
      yield chunk;
    }
  }

  /** The first `size` pending bytes as one part; the remainder stays pending. */
  function takePending(size: number): Uint8Array {
    const out = new Uint8Array(size);
    let offset = 0;
    while (offset < size) {
      const head = pending[0] as Uint8Array;
      const take = Math.min(size - offset, head.byteLength);
      out.set(head.subarray(0, take), offset);
      offset += take;
      if (take === head.byteLength) pending.shift();
      else pending[0] = head.subarray(take);
    }
    filled -= size;
    return out;
  }

  function digest(): Promise<string> {
    sha256 ??= hashWriter
      .close()
      .then(() => hasher.digest)
      .then(hexOf);
    return sha256;
  }

  async function complete(): Promise<Artifact & { storedBytes: number }> {
    if (state !== "open") throw new Error(`the input upload is ${state}`);
    state = "completing";
    const hex = await digest();
    await gzipWriter.close();
    await pumped;
    const rest = takePending(filled);
    if (!multipart) {
      // R2 checks the stored (compressed) bytes' sha256; the file's own is kept beside it.
      await bucket.put(key, rest, {
        sha256: await sha256Hex(rest),
        httpMetadata: { contentType, contentEncoding: "gzip" },
        customMetadata: { sha256: hex },
      });
    } else {
      if (rest.byteLength > 0) await sendPart(rest);
      sent.push(...(await Promise.all(sending.splice(0))));
      await multipart.complete(sent);
    }
    state = "completed";
    return { key, sha256: hex, bytes: total, storedBytes };
  }

  async function discard(): Promise<void> {
    const was = state;
    state = "discarded";
    await hashWriter.abort(new Error("upload discarded")).catch(() => {});
    // Closed, not aborted (an aborted compressor leaves rejections nobody can catch): the pump drains what
    // is left and sends nothing more, as the upload is discarded.
    gzipWriter.close().catch(() => {});
    try {
      if (was === "completed") await bucket.delete(key);
      else if (multipart) {
        await Promise.allSettled(sending.splice(0));
        await multipart.abort();
      }
    } catch (error) {
      // Best effort: an unfinished multipart upload is invisible, and R2 expires it on its own.
      console.error(JSON.stringify({ msg: "discarding the input upload failed", key, error: String(error) }));
    }
  }

  return { tee, digest, complete, discard };
}
