import type { Work } from "../sources/types";
import { fnv1a64 } from "./keys";

/**
 * A merged work's content hash: 64-bit FNV-1a of its JSON with keys sorted, so two merges of the same
 * record hash alike whatever order their fields were built in. It only tells "changed" from "unchanged"
 * (a collision would leave one stale entry until its TTL ends; odds ~2⁻⁶⁴ per work).
 */
export function workHash(work: Work): string {
  return fnv1a64(canonicalJson(work));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
