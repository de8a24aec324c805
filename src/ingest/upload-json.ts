import { badRequest } from "../errors";
import { tooLarge } from "./upload-body";

/**
 * A streaming reader for the JSON upload `{"csv":"<base64>","maxDepth":2,"priority":"normal","filename":"..."}`.
 *
 * JSON.parse would need the whole ~67 MB body as one string, then a second copy as the decoded file: over
 * a Worker's 128 MB. This scanner walks the bytes once: the `csv` string is base64-decoded as it arrives
 * into one byte buffer (refused as soon as it passes the limit); every other value is small, kept as raw
 * JSON text (at most MAX_FIELD_BYTES each, MAX_FIELDS in all) and parsed with JSON.parse at the end.
 */

const MAX_FIELD_BYTES = 1024;
const MAX_KEY_BYTES = 128;
const MAX_FIELDS = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Base64 alphabet (standard and URL-safe) → sextet; -1 whitespace (skipped), -2 `=`, -3 anything else. */
const SEXTET = new Int8Array(256).fill(-3);
for (let i = 0; i < 64; i++) {
  SEXTET["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;
}
SEXTET["-".charCodeAt(0)] = 62;
SEXTET["_".charCodeAt(0)] = 63;
for (const ws of " \t\r\n") SEXTET[ws.charCodeAt(0)] = -1;
SEXTET["=".charCodeAt(0)] = -2;

/** The escapes a JSON encoder may put in base64 text: `\/` (PHP) and line breaks (MIME-wrapped base64). */
const ESCAPED: Record<number, number> = {
  47: 0x2f, // \/ → /
  110: 0x0a, // \n
  114: 0x0d, // \r
  116: 0x09, // \t
};

export interface ScannedJsonUpload {
  /** Whether the body had a `csv` string. */
  csvSeen: boolean;
  /** Decoded bytes of `csv` in all (drained or not). */
  bytes: number;
  /** Every other top-level field, parsed (small by construction). */
  fields: Record<string, unknown>;
}

function invalidJson(why: string) {
  return badRequest("invalid_json", `request body is not valid JSON: ${why}`);
}

function invalidBase64() {
  return badRequest("invalid_base64", "csv must be base64-encoded file content");
}

type State = "start" | "key-or-end" | "key" | "colon" | "value" | "csv" | "raw" | "after-value" | "done";

const isSpace = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

export class JsonUploadScanner {
  private state: State = "start";
  /** Bytes of the key or small value being read. */
  private token: number[] = [];
  private key = "";
  private afterComma = false;
  private readonly raw = new Map<string, string>();
  // Small value scanning: nesting depth and string state.
  private depth = 0;
  private inString = false;
  private escaped = false;
  // csv string: base64 quad in progress and escape state (0 none, 1 after `\`, 2-5 reading \uXXXX digits).
  private readonly sink: ScratchBytes;
  private csvSeen = false;
  private quad = 0;
  private sextets = 0;
  private padding = 0;
  private escape = 0;
  private unicode = 0;

  private readonly limit: number;
  /** Decoded bytes already handed on by `drain`. */
  private drained = 0;
  private fields: Record<string, unknown> | null = null;

  /** `limitBytes` caps the decoded file; the sink is only scratch space for one chunk's bytes. */
  constructor(limitBytes: number) {
    this.limit = limitBytes;
    this.sink = new ScratchBytes();
  }

  /** Feeds one chunk of the body. */
  write(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "csv") i = this.csvBytes(chunk, i);
      else i = this.structural(chunk, i);
    }
    this.checkLimit();
  }

  /** The file bytes decoded since the last call (a copy; the scratch space is reused). */
  drain(): Uint8Array {
    const out = this.sink.bytes.slice(0, this.sink.length);
    this.drained += this.sink.length;
    this.sink.length = 0;
    return out;
  }

  private checkLimit(): void {
    if (this.drained + this.sink.length > this.limit) throw tooLarge(this.limit);
  }

  /** Ends the body (it must have been one whole object); returns the bytes not yet drained. */
  finish(): { tail: Uint8Array } {
    if (this.state !== "done") throw invalidJson("the body ended before the object closed");
    this.checkLimit();
    const fields: Record<string, unknown> = {};
    for (const [key, text] of this.raw) {
      try {
        fields[key] = JSON.parse(text);
      } catch {
        throw invalidJson(`the value of "${key}" is not valid JSON`);
      }
    }
    this.fields = fields;
    return { tail: this.drain() };
  }

  /** What the body held besides the file; only after `finish`. */
  result(): ScannedJsonUpload {
    if (this.fields === null) throw invalidJson("the body ended before the object closed");
    return { csvSeen: this.csvSeen, bytes: this.drained, fields: this.fields };
  }

  /** Whitespace, or the one byte this state wants (then `next`); anything else is not the upload's JSON. */
  private expectByte(b: number, i: number, wanted: number, next: State, message: string): number {
    if (isSpace(b)) return i + 1;
    if (b !== wanted) throw invalidJson(message);
    this.state = next;
    return i + 1;
  }

  /** One byte outside the csv string: the object's keys, colons, commas and small values. */
  private structural(chunk: Uint8Array, i: number): number {
    const b = chunk[i] as number;
    switch (this.state) {
      case "start":
        return this.expectByte(b, i, 0x7b, "key-or-end", "expected an object");
      case "key-or-end":
        if (isSpace(b)) return i + 1;
        if (b === 0x7d && !this.afterComma) {
          this.state = "done";
          return i + 1;
        }
        if (b !== QUOTE) throw invalidJson("expected a key");
        this.state = "key";
        this.token = [];
        this.escaped = false;
        return i + 1;
      case "key":
        if (b === QUOTE && !this.escaped) {
          this.key = this.parseKey();
          this.state = "colon";
          return i + 1;
        }
        this.escaped = b === BACKSLASH && !this.escaped;
        this.pushToken(b, MAX_KEY_BYTES, "a key is too long");
        return i + 1;
      case "colon":
        return this.expectByte(b, i, 0x3a, "value", "expected `:` after a key");
      case "value":
        return this.startValue(b, i);
      case "raw":
        return this.rawByte(b, i);
      case "after-value":
        if (isSpace(b)) return i + 1;
        if (b === 0x2c) {
          this.state = "key-or-end";
          this.afterComma = true;
          return i + 1;
        }
        if (b === 0x7d) {
          this.state = "done";
          return i + 1;
        }
        throw invalidJson("expected `,` or `}` after a value");
      case "done":
        if (isSpace(b)) return i + 1;
        throw invalidJson("unexpected data after the object");
      default:
        return i;
    }
  }

  private startValue(b: number, i: number): number {
    if (isSpace(b)) return i + 1;
    this.afterComma = false;
    if (this.key === "csv") {
      if (this.csvSeen) throw badRequest("invalid_request", "csv appears more than once");
      if (b === QUOTE) {
        this.csvSeen = true;
        this.state = "csv";
        return i + 1;
      }
    }
    if (this.raw.size >= MAX_FIELDS && !this.raw.has(this.key)) {
      throw badRequest("invalid_request", `the JSON upload has more than ${MAX_FIELDS} fields`);
    }
    this.state = "raw";
    this.token = [];
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    return i;
  }

  /** A byte of a small value; the value ends at `,` or `}` outside strings and brackets. */
  private rawByte(b: number, i: number): number {
    if (this.inString) {
      if (b === QUOTE && !this.escaped) this.inString = false;
      this.escaped = b === BACKSLASH && !this.escaped;
    } else if (b === QUOTE) {
      this.inString = true;
      this.escaped = false;
    } else if (b === 0x7b || b === 0x5b) {
      this.depth++;
    } else if ((b === 0x2c || b === 0x7d || b === 0x5d) && this.depth === 0) {
      if (b === 0x5d) throw invalidJson("unexpected `]`");
      this.raw.set(this.key, this.tokenText());
      this.state = "after-value";
      return i; // the `,` or `}` is read again as structure
    } else if (b === 0x7d || b === 0x5d) {
      this.depth--;
    }
    this.pushToken(b, MAX_FIELD_BYTES, `the value of "${this.key.slice(0, 64)}" is too long`);
    return i + 1;
  }

  private pushToken(b: number, max: number, message: string): void {
    if (this.token.length >= max) {
      const option = this.key === "maxDepth" || this.key === "priority";
      throw badRequest(option ? "invalid_option" : "invalid_request", message, { maxBytes: max });
    }
    this.token.push(b);
  }

  private tokenText(): string {
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(new Uint8Array(this.token));
    } catch {
      throw badRequest("invalid_encoding", "the JSON body is not valid UTF-8");
    }
  }

  /** Keys are parsed as they end (to know which one is `csv`); a non-string key cannot occur here. */
  private parseKey(): string {
    try {
      return String(JSON.parse(`"${this.tokenText()}"`));
    } catch {
      throw invalidJson("a key is not a valid JSON string");
    }
  }

  /** The hot loop: base64 text → bytes straight into the sink, until the closing quote. */
  private csvBytes(chunk: Uint8Array, start: number): number {
    // Every 4 characters make at most 3 bytes: room for the whole chunk up front, checked after it.
    this.sink.reserve(Math.ceil(((chunk.length - start) * 3) / 4) + 3);
    const out = this.sink.bytes;
    let length = this.sink.length;
    let i = start;
    for (; i < chunk.length; i++) {
      let b = chunk[i] as number;
      if (this.escape !== 0 || b === BACKSLASH) {
        const decoded = this.escapeByte(b);
        if (decoded === -1) continue;
        b = decoded;
      } else if (b === QUOTE) {
        break;
      }
      const value = SEXTET[b] as number;
      if (value === -1) continue;
      if (value === -2) {
        if (this.sextets < 2 || ++this.padding > 2) throw invalidBase64();
        continue;
      }
      if (value < 0 || this.padding > 0) throw invalidBase64();
      this.quad = (this.quad << 6) | value;
      if (++this.sextets === 4) {
        out[length++] = this.quad >>> 16;
        out[length++] = (this.quad >>> 8) & 0xff;
        out[length++] = this.quad & 0xff;
        this.quad = 0;
        this.sextets = 0;
      }
    }
    this.sink.length = length;
    if (i < chunk.length) {
      this.endCsv();
      this.state = "after-value";
      return i + 1;
    }
    return i;
  }

  /** Handles `\` escapes inside the csv string; -1 while more of the escape is to come. */
  private escapeByte(b: number): number {
    if (this.escape === 0) {
      this.escape = 1;
      return -1;
    }
    if (this.escape === 1) {
      if (b === 0x75) {
        this.escape = 2;
        this.unicode = 0;
        return -1;
      }
      this.escape = 0;
      const mapped = ESCAPED[b];
      if (mapped === undefined) throw invalidBase64();
      return mapped;
    }
    const digit = Number.parseInt(String.fromCharCode(b), 16);
    if (Number.isNaN(digit)) throw invalidJson("a \\u escape needs four hex digits");
    this.unicode = this.unicode * 16 + digit;
    if (++this.escape < 6) return -1;
    this.escape = 0;
    if (this.unicode > 0x7f) throw invalidBase64();
    return this.unicode;
  }

  /** The last, partial quad: 2 or 3 characters make 1 or 2 bytes; 1 is not base64. */
  private endCsv(): void {
    if (this.escape !== 0) throw invalidJson("an escape is unfinished");
    const out = this.sink;
    if (this.sextets === 1) throw invalidBase64();
    if (this.padding > 0 && (this.sextets + this.padding) % 4 !== 0) throw invalidBase64();
    if (this.sextets === 2) out.push(new Uint8Array([(this.quad >>> 4) & 0xff]));
    if (this.sextets === 3) out.push(new Uint8Array([(this.quad >>> 10) & 0xff, (this.quad >>> 2) & 0xff]));
    this.sextets = 0;
  }
}

/**
 * The decoded bytes of the chunk being scanned, until `drain` hands them on: grows to the largest chunk's
 * worth and is reused (the limit on the whole file is the scanner's, over drained + held bytes).
 */
class ScratchBytes {
  bytes = new Uint8Array(64 * 1024);
  length = 0;

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    const needed = this.length + n;
    if (needed <= this.bytes.byteLength) return;
    const grown = new Uint8Array(Math.max(needed, this.bytes.byteLength * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  push(chunk: Uint8Array): void {
    this.reserve(chunk.byteLength);
    this.bytes.set(chunk, this.length);
    this.length += chunk.byteLength;
  }
}
