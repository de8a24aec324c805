import type { z } from "zod";
import type { Artifact } from "./stages";

/** Where a job's artifacts live in R2: `jobs/<id>/input` (the upload) and `jobs/<id>/<stage artifact>`. */
export function artifactKey(jobId: string, name: string): string {
  return `jobs/${jobId}/${name}`;
}

export async function sha256Hex(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  return hexOf(await crypto.subtle.digest("SHA-256", bytes));
}

/** A digest as lower-case hex, as sha256 values are recorded in D1, R2 metadata and the manifest. */
export function hexOf(digest: ArrayBuffer): string {
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes bytes to R2 with their sha256 (R2 refuses the put if the bytes it received do not match), so a
 * stored artifact is whole or absent: a put is atomic, and writing the same key again replaces it whole.
 */
export async function putArtifact(
  bucket: R2Bucket,
  key: string,
  bytes: Uint8Array,
  contentType: string,
  knownSha256?: string,
): Promise<Artifact> {
  const sha256 = knownSha256 ?? (await sha256Hex(bytes));
  await bucket.put(key, bytes, { sha256, httpMetadata: { contentType }, customMetadata: { sha256 } });
  return { key, sha256, bytes: bytes.byteLength };
}

export function putJsonArtifact(bucket: R2Bucket, key: string, value: unknown): Promise<Artifact> {
  return putArtifact(bucket, key, new TextEncoder().encode(JSON.stringify(value)), "application/json");
}

export type ArtifactCheck<T> = { ok: true; value: T } | { ok: false; check: string; detail: string };

/**
 * Reads an artifact back and checks it the way a gate does: present in R2, the same sha256 as recorded,
 * JSON, and valid against its zod contract. A failure names the check that refused it.
 */
export async function readArtifact<T>(
  bucket: R2Bucket,
  artifact: Artifact | null,
  schema: z.ZodType<T>,
): Promise<ArtifactCheck<T>> {
  if (!artifact)
    return { ok: false, check: "artifact_recorded", detail: "no artifact recorded for the stage" };
  const object = await bucket.get(artifact.key);
  if (!object) return { ok: false, check: "artifact_present", detail: `${artifact.key} is not in R2` };
  const bytes = new Uint8Array(await object.arrayBuffer());
  const sha = await sha256Hex(bytes);
  if (sha !== artifact.sha256)
    return {
      ok: false,
      check: "artifact_checksum",
      detail: `${artifact.key}: sha256 ${sha} ≠ recorded ${artifact.sha256}`,
    };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { ok: false, check: "artifact_json", detail: `${artifact.key} is not JSON` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      check: "artifact_contract",
      detail: `${artifact.key}: ${issue?.path.join(".") || "(root)"} ${issue?.message ?? "invalid"}`,
    };
  }
  return { ok: true, value: parsed.data };
}
