import { z } from "zod";
import { AppError, badRequest } from "../errors";
import { type MultipartSummary, multipartFileChunks } from "./multipart";
import { bodyChunks } from "./upload-body";
import { JsonUploadScanner } from "./upload-json";

export const PRIORITIES = ["low", "normal", "high"] as const;

const DEPTH_MESSAGE = "maxDepth must be a whole number between 0 and 3";
const PRIORITY_MESSAGE = "priority must be one of low, normal, high";

/** A depth as a JSON number: an integer 0–3, nothing coerced (no "", null, false, [] or "0x3"). */
const depthNumber = z
  .number({ message: DEPTH_MESSAGE })
  .int(DEPTH_MESSAGE)
  .min(0, DEPTH_MESSAGE)
  .max(3, DEPTH_MESSAGE);
/** A depth from a query string or form field: decimal digits only, then the same range. */
const depthText = z
  .string()
  .regex(/^\d{1,2}$/, DEPTH_MESSAGE)
  .transform(Number)
  .pipe(depthNumber);
const priority = z.enum(PRIORITIES, { message: PRIORITY_MESSAGE });

/** Options from the query string or form fields (strings). */
export const textOptionsSchema = z.object({
  maxDepth: depthText.default(2),
  priority: priority.default("normal"),
});

/** Options from a JSON body (JSON values: a number for maxDepth). */
export const jsonOptionsSchema = z.object({
  maxDepth: depthNumber.default(2),
  priority: priority.default("normal"),
});

export type UploadOptions = z.infer<typeof textOptionsSchema>;

export interface UploadMeta {
  options: UploadOptions;
  filename: string | null;
}

/**
 * An upload being received: the file's bytes as they arrive (every limit enforced while reading), and its
 * options once the file has been read to its end (a multipart field or a JSON key may follow the file).
 */
export interface UploadSource {
  chunks: AsyncIterable<Uint8Array>;
  /** Throws the shape's option and framing errors (`invalid_option`, `missing_file`, …). */
  meta(): UploadMeta;
}

/** Multipart framing and small fields allowed on top of the file itself. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
/** Largest non-file multipart field (and part header block). */
const MAX_FIELD_BYTES = 8 * 1024;
/** Form fields besides the file: a handful of options; more is not a Kindling client. */
const MAX_MULTIPART_PARTS = 16;
/** Error details list at most this many names, each at most this long: never an unbounded echo. */
const MAX_LISTED_NAMES = 10;
const MAX_NAME_LENGTH = 64;

/** Every option error, whatever the shape, is `invalid_option` naming the field and what is allowed. */
function parseOptions<T extends z.ZodType<UploadOptions, unknown>>(schema: T, raw: Record<string, unknown>) {
  const parsed = schema.safeParse({ maxDepth: raw.maxDepth, priority: raw.priority });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest("invalid_option", issue?.message ?? "invalid upload option", {
      field: issue?.path.join("."),
      allowed: { maxDepth: "0-3", priority: PRIORITIES },
    });
  }
  return parsed.data;
}

/** A bounded list of names for error details. */
function boundedNames(names: Iterable<string>): string[] {
  return [...new Set(names)].slice(0, MAX_LISTED_NAMES).map((n) => n.slice(0, MAX_NAME_LENGTH));
}

const CSV_TYPES = new Set(["text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"]);

/** A raw CSV body: every option is in the query string, known before the body is read. */
export function optionsInQuery(request: Request): boolean {
  const contentType = (request.headers.get("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return CSV_TYPES.has(contentType);
}

/**
 * Receives an upload in any of the three accepted shapes: a raw CSV body (options in the query string),
 * multipart/form-data with a `file` field (options as fields), or JSON with the file base64-encoded. The
 * file is streamed, never held whole: see `readExport`.
 */
export function readUpload(request: Request, limitBytes: number): UploadSource {
  const contentType = (request.headers.get("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const query = Object.fromEntries(new URL(request.url).searchParams);
  if (CSV_TYPES.has(contentType)) {
    // Options first: a bad option is refused before the body is read.
    const meta = { options: parseOptions(textOptionsSchema, query), filename: query.filename ?? null };
    return { chunks: bodyChunks(request, limitBytes, limitBytes), meta: () => meta };
  }
  if (contentType === "multipart/form-data") return multipartUpload(request, limitBytes, query);
  if (contentType === "application/json") return jsonUpload(request, limitBytes);
  throw new AppError({
    code: "unsupported_media_type",
    message: `unsupported Content-Type "${contentType.slice(0, MAX_NAME_LENGTH) || "(none)"}"; send text/csv, multipart/form-data (field "file") or application/json`,
    httpStatus: 415,
    kind: "permanent",
    details: { accepted: ["text/csv", "multipart/form-data", "application/json"] },
  });
}

/** The multipart boundary from the Content-Type header. */
function multipartBoundary(request: Request): string {
  const header = request.headers.get("Content-Type") ?? "";
  const boundary = /boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(header);
  const value = boundary?.[1] ?? boundary?.[2];
  if (!value) throw badRequest("invalid_multipart", "multipart Content-Type has no boundary");
  return value;
}

/** Streams the `file` part; options come from small fields (before or after the file). */
function multipartUpload(request: Request, limitBytes: number, query: Record<string, string>): UploadSource {
  const summary: MultipartSummary = { names: [], fields: {}, filename: null };
  const boundary = multipartBoundary(request);
  return {
    chunks: multipartFileChunks(
      bodyChunks(request, limitBytes + MULTIPART_OVERHEAD_BYTES, limitBytes),
      boundary,
      { fileBytes: limitBytes, parts: MAX_MULTIPART_PARTS, fieldBytes: MAX_FIELD_BYTES },
      summary,
    ),
    meta() {
      if (summary.filename === null) {
        throw badRequest("missing_file", "multipart upload needs a file in the field named `file`", {
          fieldsFound: boundedNames(summary.names),
        });
      }
      const fields = { ...query, ...pick(summary.fields, ["maxDepth", "priority"]) };
      return { options: parseOptions(textOptionsSchema, fields), filename: summary.filename || null };
    },
  };
}

function pick(record: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.flatMap((k) => (k in record ? [[k, record[k] as string]] : [])));
}

const jsonFieldsSchema = z.object({
  filename: z
    .string({ message: "filename must be a string" })
    .max(255, "filename is at most 255 characters")
    .optional(),
});

/** Streams the JSON body through the scanner: the base64 `csv` is decoded and passed on as it arrives. */
function jsonUpload(request: Request, limitBytes: number): UploadSource {
  // Base64 is 4/3 the size of the file it carries; the other fields are small.
  const maxBody = Math.ceil((limitBytes * 4) / 3) + MULTIPART_OVERHEAD_BYTES;
  const scanner = new JsonUploadScanner(limitBytes);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for await (const chunk of bodyChunks(request, maxBody, limitBytes)) {
      scanner.write(chunk);
      const decoded = scanner.drain();
      if (decoded.length > 0) yield decoded;
    }
    const tail = scanner.finish().tail;
    if (tail.length > 0) yield tail;
  }
  return {
    chunks: chunks(),
    meta() {
      const { csvSeen, fields, bytes } = scanner.result();
      const options = parseOptions(jsonOptionsSchema, fields);
      if (fields.csv !== undefined)
        throw badRequest("invalid_request", "csv must be a string of base64", { field: "csv" });
      if (!csvSeen)
        throw badRequest("invalid_request", "csv (base64-encoded file) is required", { field: "csv" });
      if (bytes === 0) throw badRequest("invalid_request", "csv must not be empty", { field: "csv" });
      const extra = jsonFieldsSchema.safeParse(fields);
      if (!extra.success) {
        throw badRequest("invalid_request", extra.error.issues[0]?.message ?? "invalid JSON upload", {
          field: "filename",
          expected:
            '{ "csv": "<base64>", "maxDepth": 0-3, "priority": "low|normal|high", "filename": "..." }',
        });
      }
      return { options, filename: extra.data.filename ?? null };
    },
  };
}
