import { z } from "zod";
import { AppError, badRequest } from "../errors";

export const PRIORITIES = ["low", "normal", "high"] as const;

export const uploadOptionsSchema = z.object({
  maxDepth: z.coerce
    .number({ message: "maxDepth must be a number" })
    .int("maxDepth must be a whole number")
    .min(0, "maxDepth must be between 0 and 3")
    .max(3, "maxDepth must be between 0 and 3")
    .default(2),
  priority: z.enum(PRIORITIES, { message: "priority must be one of low, normal, high" }).default("normal"),
});

export type UploadOptions = z.infer<typeof uploadOptionsSchema>;

/** The JSON upload: `{ "csv": "<base64>", "maxDepth": 2, "priority": "normal", "filename"?: "..." }`. */
export const jsonUploadSchema = uploadOptionsSchema.extend({
  csv: z.string({ message: "csv (base64-encoded file) is required" }).min(1, "csv must not be empty"),
  filename: z.string().max(255).optional(),
});

export interface Upload {
  bytes: Uint8Array;
  text: string;
  options: UploadOptions;
  filename: string | null;
}

function tooLarge(limit: number, received?: number): AppError {
  return new AppError({
    code: "payload_too_large",
    message: `upload exceeds the limit of ${limit} bytes (${Math.round(limit / 1024 / 1024)} MiB)`,
    httpStatus: 413,
    kind: "permanent",
    details: { limitBytes: limit, ...(received === undefined ? {} : { receivedBytes: received }) },
  });
}

/** Reads a body without ever holding more than `limit` bytes, whatever Content-Length claims. */
async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("Content-Length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit, declared);
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** UTF-8 only: a file in another encoding is refused, never stored with mangled names. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw badRequest("invalid_encoding", "the file is not valid UTF-8 text; export it as UTF-8 CSV");
  }
}

function decodeBase64(data: string): Uint8Array {
  const cleaned = data.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(cleaned)) {
    throw badRequest("invalid_base64", "csv must be base64-encoded file content");
  }
  let binary: string;
  try {
    binary = atob(cleaned.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    throw badRequest("invalid_base64", "csv must be base64-encoded file content");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function parseOptions(raw: Record<string, unknown>): UploadOptions {
  const parsed = uploadOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest("invalid_option", issue?.message ?? "invalid upload option", {
      field: issue?.path.join("."),
      allowed: { maxDepth: "0-3", priority: PRIORITIES },
    });
  }
  return parsed.data;
}

const CSV_TYPES = new Set(["text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"]);

/**
 * Reads an upload in any of the three accepted shapes: a raw CSV body (options in the query string),
 * multipart/form-data with a `file` field (options as fields), or JSON with the file base64-encoded.
 */
export async function readUpload(request: Request, limitBytes: number): Promise<Upload> {
  const contentType = (request.headers.get("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const query = Object.fromEntries(new URL(request.url).searchParams);
  if (CSV_TYPES.has(contentType)) {
    const bytes = await readLimited(request, limitBytes);
    return { bytes, text: decodeUtf8(bytes), options: parseOptions(query), filename: query.filename ?? null };
  }
  if (contentType === "multipart/form-data") {
    // Multipart framing adds a little; the file itself is held to the limit below.
    const raw = await readLimited(request, limitBytes + 64 * 1024);
    let form: FormData;
    try {
      form = await new Request(request.url, {
        method: "POST",
        headers: request.headers,
        body: raw,
      }).formData();
    } catch {
      throw badRequest("invalid_multipart", "could not read the multipart body");
    }
    const file = form.get("file");
    if (file === null || typeof file === "string") {
      throw badRequest("missing_file", "multipart upload needs a file in the field named `file`", {
        fieldsFound: [...new Set([...form.keys()])],
      });
    }
    if (file.size > limitBytes) throw tooLarge(limitBytes, file.size);
    const bytes = new Uint8Array(await file.arrayBuffer());
    const fields: Record<string, unknown> = { ...query };
    for (const key of ["maxDepth", "priority"]) {
      const value = form.get(key);
      if (typeof value === "string") fields[key] = value;
    }
    return { bytes, text: decodeUtf8(bytes), options: parseOptions(fields), filename: file.name || null };
  }
  if (contentType === "application/json") {
    // Base64 is 4/3 the size of the file it carries.
    const raw = await readLimited(request, Math.ceil((limitBytes * 4) / 3) + 64 * 1024);
    let json: unknown;
    try {
      json = JSON.parse(decodeUtf8(raw));
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw badRequest("invalid_json", "request body is not valid JSON");
    }
    const parsed = jsonUploadSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest("invalid_request", issue?.message ?? "invalid JSON upload", {
        field: issue?.path.join("."),
        expected: '{ "csv": "<base64>", "maxDepth": 0-3, "priority": "low|normal|high" }',
      });
    }
    const bytes = decodeBase64(parsed.data.csv);
    if (bytes.byteLength > limitBytes) throw tooLarge(limitBytes, bytes.byteLength);
    return {
      bytes,
      text: decodeUtf8(bytes),
      options: { maxDepth: parsed.data.maxDepth, priority: parsed.data.priority },
      filename: parsed.data.filename ?? null,
    };
  }
  throw new AppError({
    code: "unsupported_media_type",
    message: `unsupported Content-Type "${contentType || "(none)"}"; send text/csv, multipart/form-data (field "file") or application/json`,
    httpStatus: 415,
    kind: "permanent",
    details: { accepted: ["text/csv", "multipart/form-data", "application/json"] },
  });
}
