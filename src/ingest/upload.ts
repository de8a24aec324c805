import {
  MaxFileSizeExceededError,
  MaxPartsExceededError,
  MaxTotalSizeExceededError,
  MultipartParseError,
  MultipartParser,
} from "@remix-run/multipart-parser";
import { z } from "zod";
import { AppError, badRequest } from "../errors";
import { bodyChunks, declaredLength, readLimited, tooLarge } from "./upload-body";
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

export interface Upload {
  bytes: Uint8Array;
  text: string;
  options: UploadOptions;
  filename: string | null;
}

/** Multipart framing and small fields allowed on top of the file itself. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
/** Form fields besides the file: a handful of options; more is not a Kindling client. */
const MAX_MULTIPART_PARTS = 16;
/** Error details list at most this many names, each at most this long: never an unbounded echo. */
const MAX_LISTED_NAMES = 10;
const MAX_NAME_LENGTH = 64;

/** UTF-8 only: a file in another encoding is refused, never stored with mangled names. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw badRequest("invalid_encoding", "the file is not valid UTF-8 text; export it as UTF-8 CSV");
  }
}

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

/**
 * Reads an upload in any of the three accepted shapes: a raw CSV body (options in the query string),
 * multipart/form-data with a `file` field (options as fields), or JSON with the file base64-encoded.
 * Each keeps one copy of the file's bytes, refused as soon as it passes `limitBytes`.
 */
export async function readUpload(request: Request, limitBytes: number): Promise<Upload> {
  const contentType = (request.headers.get("Content-Type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  const query = Object.fromEntries(new URL(request.url).searchParams);
  if (CSV_TYPES.has(contentType)) {
    // Options first: a bad option is refused before the body is read.
    const options = parseOptions(textOptionsSchema, query);
    const bytes = await readLimited(request, limitBytes);
    return { bytes, text: decodeUtf8(bytes), options, filename: query.filename ?? null };
  }
  if (contentType === "multipart/form-data") return readMultipart(request, limitBytes, query);
  if (contentType === "application/json") return readJson(request, limitBytes);
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

/** Maps the parser's limit and syntax errors onto API errors. */
function multipartError(error: unknown, limitBytes: number): unknown {
  if (error instanceof AppError) return error;
  if (!(error instanceof MultipartParseError)) return error;
  if (error instanceof MaxFileSizeExceededError || error instanceof MaxTotalSizeExceededError) {
    return tooLarge(limitBytes);
  }
  if (error instanceof MaxPartsExceededError) {
    return badRequest("too_many_parts", `a multipart upload takes at most ${MAX_MULTIPART_PARTS} parts`);
  }
  return badRequest("invalid_multipart", "could not read the multipart body");
}

/**
 * Streams the multipart body through a parser that holds each part to the limit: only the `file` part's
 * bytes are kept (a second `file` part is refused, not silently dropped); options come from small fields.
 */
async function readMultipart(
  request: Request,
  limitBytes: number,
  query: Record<string, string>,
): Promise<Upload> {
  const parser = new MultipartParser(multipartBoundary(request), {
    maxFileSize: limitBytes,
    maxTotalSize: limitBytes + MULTIPART_OVERHEAD_BYTES,
    maxParts: MAX_MULTIPART_PARTS,
    maxHeaderSize: 8 * 1024,
  });
  const fields: Record<string, unknown> = { ...query };
  const names: string[] = [];
  let file: { bytes: Uint8Array; filename: string | null } | null = null;
  try {
    for await (const chunk of bodyChunks(request, limitBytes + MULTIPART_OVERHEAD_BYTES, limitBytes)) {
      for (const part of parser.write(chunk)) {
        const name = part.name ?? "";
        names.push(name);
        if (name === "file") {
          if (file) throw badRequest("multiple_files", "send one file per upload, in one field named `file`");
          file = { bytes: part.bytes, filename: part.filename ?? null };
        } else if (name === "maxDepth" || name === "priority") {
          fields[name] = part.text;
        }
      }
    }
    parser.finish();
  } catch (error) {
    throw multipartError(error, limitBytes);
  }
  if (!file || file.filename === null) {
    throw badRequest("missing_file", "multipart upload needs a file in the field named `file`", {
      fieldsFound: boundedNames(names),
    });
  }
  const options = parseOptions(textOptionsSchema, fields);
  return { bytes: file.bytes, text: decodeUtf8(file.bytes), options, filename: file.filename || null };
}

const jsonFieldsSchema = z.object({
  filename: z
    .string({ message: "filename must be a string" })
    .max(255, "filename is at most 255 characters")
    .optional(),
});

/** Streams the JSON body through the scanner: the base64 `csv` is decoded as it arrives. */
async function readJson(request: Request, limitBytes: number): Promise<Upload> {
  // Base64 is 4/3 the size of the file it carries; the other fields are small.
  const maxBody = Math.ceil((limitBytes * 4) / 3) + MULTIPART_OVERHEAD_BYTES;
  const declared = declaredLength(request);
  const scanner = new JsonUploadScanner(
    limitBytes,
    declared === undefined ? undefined : Math.floor((declared * 3) / 4),
  );
  for await (const chunk of bodyChunks(request, maxBody, limitBytes)) scanner.write(chunk);
  const { csv, fields } = scanner.finish();
  const options = parseOptions(jsonOptionsSchema, fields);
  if (fields.csv !== undefined)
    throw badRequest("invalid_request", "csv must be a string of base64", { field: "csv" });
  if (csv === null)
    throw badRequest("invalid_request", "csv (base64-encoded file) is required", { field: "csv" });
  if (csv.byteLength === 0) throw badRequest("invalid_request", "csv must not be empty", { field: "csv" });
  const extra = jsonFieldsSchema.safeParse(fields);
  if (!extra.success) {
    throw badRequest("invalid_request", extra.error.issues[0]?.message ?? "invalid JSON upload", {
      field: "filename",
      expected: '{ "csv": "<base64>", "maxDepth": 0-3, "priority": "low|normal|high", "filename": "..." }',
    });
  }
  return { bytes: csv, text: decodeUtf8(csv), options, filename: extra.data.filename ?? null };
}
