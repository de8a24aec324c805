import type { NewRootTask } from "../db/jobs";
import type { ParsedExport } from "../ingest/csv";
import { isbnItemKey } from "../ingest/isbn";

/** An upload's depth-0 tasks: every author, then every ISBN item (its display name is the ISBN-13 itself). */
export function rootTasksOf(parsed: Pick<ParsedExport, "authors" | "isbns">): NewRootTask[] {
  return [
    ...parsed.authors,
    ...parsed.isbns.map((isbn13) => ({ key: isbnItemKey(isbn13), name: isbn13, kind: "isbn" as const })),
  ];
}
