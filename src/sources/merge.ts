import { authorNameProblem } from "../ingest/limits";
import { authorKey, normalizeTitle } from "../ingest/normalize";
import type { SourceName, SourceWork, Work } from "./types";

/**
 * Fixed precedence: later sources win for scalar fields they actually have. Open Library comes last
 * because its work-level records are the canonical ones; Google Books fills gaps (ids, missing years).
 */
export const SOURCE_ORDER: readonly SourceName[] = ["googlebooks", "openlibrary"];

interface Group {
  keys: Set<string>;
  members: SourceWork[];
}

function identityKeys(work: SourceWork): string[] {
  const keys = work.isbn13s.map((isbn) => `isbn:${isbn}`);
  if (work.openLibraryKey) keys.push(`ol:${work.openLibraryKey}`);
  const first = work.authors[0];
  if (work.title) keys.push(`title:${normalizeTitle(work.title)}|${first ? authorKey(first) : ""}`);
  return keys;
}

function combine(members: SourceWork[]): Work {
  let title = "";
  let authors: string[] = [];
  let openLibraryKey: string | null = null;
  let googleBooksId: string | null = null;
  let firstPublishYear: number | null = null;
  let coverId: number | null = null;
  let primaryIsbn: string | null = null;
  const isbn13s: string[] = [];
  const sources: SourceName[] = [];
  for (const member of members) {
    if (member.title) title = member.title;
    if (member.authors.length > 0) authors = member.authors;
    openLibraryKey = member.openLibraryKey ?? openLibraryKey;
    googleBooksId = member.googleBooksId ?? googleBooksId;
    firstPublishYear = member.firstPublishYear ?? firstPublishYear;
    coverId = member.coverId ?? coverId;
    if (member.isbn13s[0]) primaryIsbn = member.isbn13s[0];
    for (const isbn of member.isbn13s) if (!isbn13s.includes(isbn)) isbn13s.push(isbn);
    if (!sources.includes(member.source)) sources.push(member.source);
  }
  const first = authors[0];
  const id = primaryIsbn
    ? `isbn:${primaryIsbn}`
    : openLibraryKey
      ? `ol:${openLibraryKey}`
      : `title:${normalizeTitle(title)}|${first ? authorKey(first) : ""}`;
  return {
    id,
    title,
    authors,
    isbn13: primaryIsbn,
    isbn13s,
    openLibraryKey,
    googleBooksId,
    firstPublishYear,
    coverId,
    sources: SOURCE_ORDER.filter((s) => sources.includes(s)),
  };
}

/**
 * One record per work across sources and pages. Two records are the same work when they share an
 * ISBN-13, an Open Library work key, or a normalised title with the same first author.
 * The result does not depend on the order of the input.
 */
export function mergeWorks(inputs: readonly SourceWork[]): Work[] {
  const ordered = [...inputs].sort((a, b) => SOURCE_ORDER.indexOf(a.source) - SOURCE_ORDER.indexOf(b.source));
  const groups: Group[] = [];
  const groupByKey = new Map<string, Group>();
  for (const work of ordered) {
    const keys = identityKeys(work);
    const matched = [
      ...new Set(keys.map((k) => groupByKey.get(k)).filter((g): g is Group => g !== undefined)),
    ];
    let target: Group;
    if (matched.length === 0) {
      target = { keys: new Set(), members: [] };
      groups.push(target);
    } else {
      target = matched[0] as Group;
      for (const other of matched.slice(1)) {
        // Two groups turned out to be one work: fold the later into the earlier, keeping source order.
        for (const key of other.keys) target.keys.add(key);
        target.members.push(...other.members);
        groups.splice(groups.indexOf(other), 1);
      }
      target.members.sort((a, b) => SOURCE_ORDER.indexOf(a.source) - SOURCE_ORDER.indexOf(b.source));
    }
    target.members.push(work);
    for (const key of keys) target.keys.add(key);
    for (const key of target.keys) groupByKey.set(key, target);
  }
  return groups
    .map((g) => combine(g.members))
    .sort((a, b) => a.title.localeCompare(b.title) || a.id.localeCompare(b.id));
}

/** Co-authors named on an author's merged works, excluding the author, first spelling kept. */
export function coAuthorsOf(author: string, works: readonly Work[]): { key: string; name: string }[] {
  const self = authorKey(author);
  const found = new Map<string, string>();
  for (const work of works) {
    for (const name of work.authors) {
      const key = authorKey(name);
      // An upstream name past the ingest limits would be a task that can never become a message.
      if (authorNameProblem(name) !== null) continue;
      if (key && key !== self && !found.has(key)) found.set(key, name);
    }
  }
  return [...found].map(([key, name]) => ({ key, name }));
}
