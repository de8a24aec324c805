import { badRequest } from "../errors";
import { ExportParser, type ParsedExport, type ParseExportOptions } from "./csv";
import type { UploadMeta, UploadSource } from "./upload";

export interface ReadExport {
  parsed: ParsedExport;
  meta: UploadMeta;
  /** sha256 of the file and the options (what an Idempotency-Key replay must match). */
  requestHash: string;
}

const encoder = new TextEncoder();
const SEPARATOR = new Uint8Array([0]);

function invalidEncoding() {
  return badRequest("invalid_encoding", "the file is not valid UTF-8 text; export it as UTF-8 CSV");
}

/**
 * Reads an upload's file as it arrives: each chunk is hashed, decoded as UTF-8 and parsed, then dropped.
 * Nothing holds the whole file (the parser keeps at most one unfinished row), so memory does not grow with
 * the upload. The options come from the source once its file is read (multipart fields may follow the file).
 */
export async function readExport(source: UploadSource, opts: ParseExportOptions): Promise<ReadExport> {
  const digest = new crypto.DigestStream("SHA-256");
  const writer = digest.getWriter();
  // A refused upload aborts the stream, which rejects `digest`: that is expected, not an unhandled error.
  digest.digest.catch(() => {});
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const parser = new ExportParser(opts);
  const decode = (chunk?: Uint8Array) => {
    try {
      return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
    } catch {
      throw invalidEncoding();
    }
  };
  try {
    for await (const chunk of source.chunks) {
      await writer.write(chunk);
      parser.push(decode(chunk));
    }
    parser.push(decode());
    const meta = source.meta();
    // The same digest as hashing file ‖ 0 ‖ maxDepth ‖ 0 ‖ priority ‖ 0 in one piece.
    for (const part of [String(meta.options.maxDepth), meta.options.priority]) {
      await writer.write(SEPARATOR);
      await writer.write(encoder.encode(part));
    }
    await writer.write(SEPARATOR);
    await writer.close();
    const parsed = parser.finish();
    const hash = [...new Uint8Array(await digest.digest)]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    return { parsed, meta, requestHash: hash };
  } catch (error) {
    await writer.abort(error).catch(() => {});
    throw error;
  }
}
