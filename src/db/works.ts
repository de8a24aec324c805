import { z } from "zod";
import { workHash } from "../cache/content-hash";
import type { Work } from "../sources/types";
import { chunkJson } from "./types";

/** Upserts merged works and links them to their author, chunked into a few statements. */
export function upsertWorksStatements(
  db: D1Database,
  entries: readonly { authorKey: string; work: Work }[],
  now: number,
  ttlSeconds: number,
): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  const seen = new Set<string>();
  const rows: Record<string, unknown>[] = [];
  for (const { work } of entries) {
    if (seen.has(work.id)) continue;
    seen.add(work.id);
    rows.push({
      id: work.id,
      t: work.title,
      a: JSON.stringify(work.authors),
      i: work.isbn13,
      is: JSON.stringify(work.isbn13s),
      ol: work.openLibraryKey,
      gb: work.googleBooksId,
      y: work.firstPublishYear,
      c: work.coverId,
      s: JSON.stringify(work.sources),
      h: workHash(work),
    });
  }
  for (const chunk of chunkJson(rows)) {
    statements.push(
      db
        .prepare(
          `INSERT INTO works (id, title, authors, isbn13, isbn13s, openlibrary_key, googlebooks_id,
             first_publish_year, cover_id, sources, updated_at, expires_at, content_hash)
           SELECT value ->> 'id', value ->> 't', value ->> 'a', value ->> 'i', value ->> 'is', value ->> 'ol',
             value ->> 'gb', value ->> 'y', value ->> 'c', value ->> 's', ?2, ?3, value ->> 'h'
           FROM json_each(?1) WHERE true
           ON CONFLICT (id) DO UPDATE SET title = excluded.title, authors = excluded.authors,
             isbn13 = excluded.isbn13, isbn13s = excluded.isbn13s, openlibrary_key = excluded.openlibrary_key,
             googlebooks_id = excluded.googlebooks_id, first_publish_year = excluded.first_publish_year,
             cover_id = excluded.cover_id, sources = excluded.sources, updated_at = excluded.updated_at,
             expires_at = excluded.expires_at, content_hash = excluded.content_hash`,
        )
        .bind(chunk, now, now + ttlSeconds * 1000),
    );
  }
  const links = entries.map((e) => ({ a: e.authorKey, w: e.work.id }));
  for (const chunk of chunkJson(links)) {
    statements.push(
      db
        .prepare(
          `INSERT INTO author_works (author_key, work_id) SELECT value ->> 'a', value ->> 'w' FROM json_each(?1)
           WHERE true ON CONFLICT DO NOTHING`,
        )
        .bind(chunk),
    );
  }
  return statements;
}

interface WorkRow {
  id: string;
  title: string;
  authors: string;
  isbn13: string | null;
  isbn13s: string;
  openlibrary_key: string | null;
  googlebooks_id: string | null;
  first_publish_year: number | null;
  cover_id: number | null;
  sources: string;
}

function rowToWork(row: WorkRow): Work {
  return {
    id: row.id,
    title: row.title,
    authors: JSON.parse(row.authors) as string[],
    isbn13: row.isbn13,
    isbn13s: JSON.parse(row.isbn13s) as string[],
    openLibraryKey: row.openlibrary_key,
    googleBooksId: row.googlebooks_id,
    firstPublishYear: row.first_publish_year,
    coverId: row.cover_id,
    sources: JSON.parse(row.sources) as Work["sources"],
  };
}

export async function getWorksByAuthor(db: D1Database, authorKey: string): Promise<Work[]> {
  const { results } = await db
    .prepare(
      `SELECT w.* FROM author_works AS aw JOIN works AS w ON w.id = aw.work_id
       WHERE aw.author_key = ?1 ORDER BY w.title`,
    )
    .bind(authorKey)
    .all<WorkRow>();
  return results.map(rowToWork);
}

export async function countWorksByAuthor(db: D1Database, authorKey: string): Promise<number> {
  const row = await db
    .prepare("SELECT COUNT(*) AS n FROM author_works WHERE author_key = ?1")
    .bind(authorKey)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

const hashRow = z.object({ k: z.string(), id: z.string(), h: z.string().nullable() });

/**
 * The stored content hash of every work linked to these items (authors' keys, `isbn:` item keys), by item
 * and work id: what a refresh compares the fresh merge with. One statement, one round trip.
 */
export async function getWorkHashes(
  db: D1Database,
  itemKeys: readonly string[],
): Promise<Map<string, Map<string, string>>> {
  const byItem = new Map<string, Map<string, string>>();
  if (itemKeys.length === 0) return byItem;
  const statements = chunkJson([...new Set(itemKeys)]).map((chunk) =>
    db
      .prepare(
        `SELECT aw.author_key AS k, w.id AS id, w.content_hash AS h
         FROM author_works AS aw JOIN works AS w ON w.id = aw.work_id
         WHERE aw.author_key IN (SELECT value FROM json_each(?1))`,
      )
      .bind(chunk),
  );
  for (const result of await db.batch(statements)) {
    for (const row of result.results ?? []) {
      const { k, id, h } = hashRow.parse(row);
      if (h === null) continue;
      const hashes = byItem.get(k) ?? new Map<string, string>();
      hashes.set(id, h);
      byItem.set(k, hashes);
    }
  }
  return byItem;
}
