import { readFileSync } from "node:fs";

/** A bench scenario's last saved numbers (bench/*.json), or undefined when it was never run here. */
export function readSavedJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}
