import { badRequest } from "../errors";
import { tooLarge } from "./upload-body";

/**
 * A streaming reader for multipart/form-data uploads: the `file` part's bytes are passed on as they arrive
 * (never held whole), the small fields are collected. No maintained parser streams a part's body in
 * workerd (they hand over whole parts), and holding a 50 MiB part twice is what this exists to avoid.
 */
export interface MultipartLimits {
  /** Largest file part, in bytes. */
  fileBytes: number;
  /** At most this many parts (the file and a few options). */
  parts: number;
  /** Largest non-file field value and part header block. */
  fieldBytes: number;
}

export interface MultipartSummary {
  /** Names of the parts seen, in order (for error details). */
  names: string[];
  /** Values of the small fields, by name (first one wins). */
  fields: Record<string, string>;
  /** The file part's filename when one was seen (`""` when the part had none). */
  filename: string | null;
}

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const encoder = new TextEncoder();
const HEADERS_END = encoder.encode("\r\n\r\n");
const latin1 = new TextDecoder("latin1");

function invalid(why: string) {
  return badRequest("invalid_multipart", `could not read the multipart body: ${why}`);
}

/** Index of `needle` in `haystack` from `from`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0] as number;
  for (let i = haystack.indexOf(first, from); i !== -1; i = haystack.indexOf(first, i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** `name` and `filename` from a part's Content-Disposition header. */
function disposition(headers: string): { name: string; filename: string | null } {
  const line = headers.split("\r\n").find((h) => /^content-disposition\s*:/i.test(h)) ?? "";
  const param = (key: string) => new RegExp(`;\\s*${key}="([^"]*)"`, "i").exec(line)?.[1] ?? null;
  return { name: param("name") ?? "", filename: param("filename") };
}

type State = "preamble" | "after-delimiter" | "headers" | "body" | "done";

/**
 * Yields the bytes of the part named `file`; fills `summary` as parts go by. Refuses a second file part
 * (`multiple_files`), too many parts, a file past the limit (413) and broken framing (`invalid_multipart`).
 */
export async function* multipartFileChunks(
  chunks: AsyncIterable<Uint8Array>,
  boundary: string,
  limits: MultipartLimits,
  summary: MultipartSummary,
): AsyncGenerator<Uint8Array> {
  const delimiter = encoder.encode(`\r\n--${boundary}`);
  // The body may start with the first delimiter, which then lacks its leading CRLF: supply one.
  let buffer: Uint8Array = encoder.encode("\r\n");
  let state: State = "preamble";
  let part: { name: string; isFile: boolean; value: number[] } | null = null;
  let fileBytes = 0;

  for await (const chunk of chunks) {
    buffer = concat(buffer, chunk);
    let pos = 0;
    for (;;) {
      if (state === "preamble") {
        const at = indexOf(buffer, delimiter, pos);
        if (at === -1) {
          pos = Math.max(pos, buffer.length - delimiter.length + 1);
          break;
        }
        pos = at + delimiter.length;
        state = "after-delimiter";
      } else if (state === "after-delimiter") {
        if (buffer.length - pos < 2) break;
        if (buffer[pos] === DASH && buffer[pos + 1] === DASH) {
          state = "done";
          pos = buffer.length;
          break;
        }
        // Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
        const eol = buffer.indexOf(LF, pos);
        if (eol === -1) break;
        if (buffer[eol - 1] !== CR) throw invalid("a boundary line does not end in CRLF");
        pos = eol + 1;
        state = "headers";
      } else if (state === "headers") {
        const end = indexOf(buffer, HEADERS_END, pos);
        if (end === -1) {
          if (buffer.length - pos > limits.fieldBytes) throw invalid("a part's headers are too long");
          break;
        }
        const headers = latin1.decode(buffer.subarray(pos, end));
        pos = end + 4;
        const { name, filename } = disposition(headers);
        summary.names.push(name);
        if (summary.names.length > limits.parts) {
          throw badRequest("too_many_parts", `a multipart upload takes at most ${limits.parts} parts`);
        }
        const isFile = name === "file";
        if (isFile) {
          if (summary.filename !== null)
            throw badRequest("multiple_files", "send one file per upload, in one field named `file`");
          summary.filename = filename ?? "";
        }
        part = { name, isFile, value: [] };
        state = "body";
      } else if (state === "body") {
        const current = part as NonNullable<typeof part>;
        const at = indexOf(buffer, delimiter, pos);
        // Everything before a possible delimiter is body; keep a tail that could be a delimiter's start.
        const end = at === -1 ? Math.max(pos, buffer.length - delimiter.length + 1) : at;
        if (end > pos) {
          const bytes = buffer.slice(pos, end);
          if (current.isFile) {
            fileBytes += bytes.length;
            if (fileBytes > limits.fileBytes) throw tooLarge(limits.fileBytes);
            yield bytes;
          } else {
            if (current.value.length + bytes.length > limits.fieldBytes)
              throw invalid(`the field "${current.name.slice(0, 64)}" is too long`);
            current.value.push(...bytes);
          }
        }
        pos = end;
        if (at === -1) break;
        if (!current.isFile && !(current.name in summary.fields)) {
          summary.fields[current.name] = new TextDecoder().decode(new Uint8Array(current.value));
        }
        part = null;
        pos = at + delimiter.length;
        state = "after-delimiter";
      } else break;
    }
    buffer = buffer.slice(pos);
  }
  if (state !== "done") throw invalid("the body ended before the closing boundary");
}
