import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/jobs/artifacts";
import { inputUpload, PART_BYTES } from "../../src/jobs/input-upload";
import { jobRow, resetAll } from "../support/db";
import { uploadCsv } from "../support/http";

/** A bucket that remembers the multipart uploads it started, so a test can check they were aborted. */
function recordingBucket(): { bucket: R2Bucket; uploads: R2MultipartUpload[] } {
  const uploads: R2MultipartUpload[] = [];
  const real = env.ARTIFACTS;
  const bucket = new Proxy(real, {
    get(target, prop) {
      if (prop === "createMultipartUpload")
        return async (key: string, options?: R2MultipartOptions) => {
          const upload = await target.createMultipartUpload(key, options);
          uploads.push(upload);
          return upload;
        };
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { bucket, uploads };
}

/**
 * `total` bytes of CSV rows (one author, titles of random letters, so the file compresses about as little as
 * base64 does: the stored, gzip-compressed upload of a file over two parts still spans more than one part).
 */
function csvBytes(total: number): Uint8Array {
  const encoder = new TextEncoder();
  const out = new Uint8Array(total);
  const header = encoder.encode("Title,Author\n");
  out.set(header, 0);
  let offset = header.byteLength;
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const random = new Uint8Array(60);
  while (offset < total) {
    crypto.getRandomValues(random);
    const title = Array.from(random, (b) => letters[b % letters.length]).join("");
    const row = encoder.encode(`${title},Ada Writer\n`);
    out.set(row.subarray(0, Math.min(row.byteLength, total - offset)), offset);
    offset += row.byteLength;
  }
  // End on a whole row: cut back to the last newline.
  return out.subarray(0, out.lastIndexOf(10) + 1);
}

async function* chunksOf(bytes: Uint8Array, size = 64 * 1024): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += size) yield bytes.slice(i, i + size);
}

async function drain(chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of chunks) n += chunk.byteLength;
  return n;
}

/** The stored object's bytes once decoded (an upload is stored gzip-compressed), and its size in R2. */
async function stored(
  key: string,
): Promise<{ bytes: Uint8Array; storedBytes: number; encoding?: string } | null> {
  const object = await env.ARTIFACTS.get(key);
  if (!object) return null;
  const encoding = object.httpMetadata?.contentEncoding;
  const body = encoding === "gzip" ? object.body.pipeThrough(new DecompressionStream("gzip")) : object.body;
  return {
    bytes: new Uint8Array(await new Response(body).arrayBuffer()),
    storedBytes: object.size,
    encoding,
  };
}

async function inputKeys(): Promise<string[]> {
  const listed = await env.ARTIFACTS.list({ prefix: "jobs/" });
  return listed.objects.map((o) => o.key).filter((k) => k.endsWith("/input"));
}

describe("the upload's input streamed to R2", () => {
  beforeEach(async () => {
    await resetAll();
    const listed = await env.ARTIFACTS.list({ prefix: "jobs/" });
    if (listed.objects.length > 0) await env.ARTIFACTS.delete(listed.objects.map((o) => o.key));
  });

  it("stores a file larger than a part, gzip-compressed, as a multipart upload: exactly its bytes, with their sha256", async () => {
    const bytes = csvBytes(2 * PART_BYTES + 12_345);
    const { bucket, uploads } = recordingBucket();
    const upload = inputUpload(bucket, "jobs/t1/input", "text/csv");
    expect(await drain(upload.tee(chunksOf(bytes)))).toBe(bytes.byteLength);
    // Full parts of compressed bytes go out as the compressor yields them; the rest at completion.
    const artifact = await upload.complete();
    expect(uploads).toHaveLength(1);
    const back = await stored("jobs/t1/input");
    expect(artifact).toEqual({
      key: "jobs/t1/input",
      sha256: await sha256Hex(bytes),
      bytes: bytes.byteLength,
      storedBytes: back?.storedBytes,
    });
    expect(back?.encoding).toBe("gzip");
    expect(back?.storedBytes).toBeGreaterThan(PART_BYTES);
    expect(back?.storedBytes).toBeLessThan(bytes.byteLength);
    expect(back?.bytes.byteLength).toBe(bytes.byteLength);
    expect(await sha256Hex(back?.bytes as Uint8Array)).toBe(artifact.sha256);
  });

  it("stores a file smaller than a part with one checked put", async () => {
    const bytes = csvBytes(10_000);
    const { bucket, uploads } = recordingBucket();
    const upload = inputUpload(bucket, "jobs/t2/input", "text/csv");
    await drain(upload.tee(chunksOf(bytes, 1000)));
    const artifact = await upload.complete();
    expect(uploads).toHaveLength(0);
    const back = await stored("jobs/t2/input");
    expect(back?.encoding).toBe("gzip");
    expect(await sha256Hex(back?.bytes as Uint8Array)).toBe(artifact.sha256);
    expect((await env.ARTIFACTS.head("jobs/t2/input"))?.customMetadata?.sha256).toBe(artifact.sha256);
  });

  it("a discarded upload leaves nothing: its multipart upload is aborted, a completed one deleted", async () => {
    const { bucket, uploads } = recordingBucket();
    const upload = inputUpload(bucket, "jobs/t3/input", "text/csv");
    await drain(upload.tee(chunksOf(csvBytes(2 * PART_BYTES))));
    // The compressor's output reaches a part shortly after the reading: the multipart upload is under way.
    for (let i = 0; i < 100 && uploads.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(uploads).toHaveLength(1);
    await upload.discard();
    expect(await env.ARTIFACTS.head("jobs/t3/input")).toBeNull();
    const started = uploads[0] as R2MultipartUpload;
    // An aborted upload takes no more parts.
    const resumed = env.ARTIFACTS.resumeMultipartUpload(started.key, started.uploadId);
    await expect(resumed.uploadPart(2, new Uint8Array(10))).rejects.toThrow();

    const done = inputUpload(env.ARTIFACTS, "jobs/t4/input", "text/csv");
    await drain(done.tee(chunksOf(csvBytes(1000))));
    await done.complete();
    expect(await env.ARTIFACTS.head("jobs/t4/input")).not.toBeNull();
    await done.discard();
    expect(await env.ARTIFACTS.head("jobs/t4/input")).toBeNull();
  });

  it("an accepted upload over a part stores exactly the file under its job, with the job's sha256", async () => {
    const bytes = csvBytes(2 * PART_BYTES);
    const csv = new TextDecoder().decode(bytes);
    const response = await uploadCsv(csv, "?maxDepth=0");
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    const back = await stored(`jobs/${jobId}/input`);
    expect(back?.storedBytes).toBeGreaterThan(PART_BYTES);
    expect(back?.bytes.byteLength).toBe(bytes.byteLength);
    const sha = await sha256Hex(back?.bytes as Uint8Array);
    expect(sha).toBe(await sha256Hex(bytes));
    expect((await jobRow(jobId))?.input_sha256).toBe(sha);
  });

  it("a refused upload over a part (a bad row after the first part) stores nothing and writes no job", async () => {
    const bytes = csvBytes(2 * PART_BYTES);
    // Invalid UTF-8 at the very end: refused only once the first part has gone to R2.
    const body = new Uint8Array(bytes.byteLength + 2);
    body.set(bytes);
    body.set([0xff, 0x0a], bytes.byteLength);
    const response = await uploadCsv(body as unknown as string);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_encoding");
    expect(await inputKeys()).toEqual([]);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs").first())?.n).toBe(0);
  });
});
