/**
 * ISO 8601 timestamps as the store and the log export accept them.
 *
 * `new Date(text)` is not used to parse: outside the one format ECMAScript defines it falls back to
 * implementation-defined parsing ("March 7", "Tue, 01 Mar 2024"), and it reads a date-time without
 * an offset in the server's local zone but a bare date as UTC. Here the grammar is explicit:
 *
 *   YYYY-MM-DD[(T|t|space)hh:mm[:ss[(.|,)fraction]][Z|z|±hh[[:]mm]]]
 *
 * YYYY may also be ECMAScript's expanded ±YYYYYY, which `toISOString` prints for years outside
 * 0–9999, so every value the store writes reads back.
 * A missing offset means UTC, for a bare date and a date-time alike, so a query means the same on
 * every machine and matches the `…Z` values the export prints. Fractions beyond milliseconds are
 * truncated; a leap second (:60) and hour 24 are refused because a JS Date cannot hold them.
 */

const ISO_8601 =
  /^(\d{4}|[+-]\d{6})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

/** Milliseconds since the epoch, or undefined when `text` is not a valid timestamp of the grammar above. */
export function parseIsoTimestampMs(text: string): number | undefined {
  const match = ISO_8601.exec(text);
  if (match === null) return undefined;
  const num = (index: number): number => Number(match[index] ?? '0');
  const [year, month, day, hour, minute, second] = [num(1), num(2), num(3), num(4), num(5), num(6)];
  const millis = Number((match[7] ?? '').padEnd(3, '0').slice(0, 3));
  const offsetHours = num(10);
  const offsetMinutes = num(11);
  if (match[1] === '-000000') return undefined; // ECMAScript forbids this spelling of year 0
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (offsetHours > 23 || offsetMinutes > 59) return undefined;

  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return undefined; // 2024-02-30 and the like roll over; refuse them instead
  }
  date.setUTCHours(hour, minute, second, millis);
  const offsetSign = match[9] === '-' ? -1 : 1;
  const ms = date.getTime() - offsetSign * (offsetHours * 60 + offsetMinutes) * 60_000;
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? ms : undefined;
}

/** The canonical form (`Date#toISOString`, UTC, milliseconds), or undefined when `text` is not valid. */
export function normalizeIsoTimestamp(text: string): string | undefined {
  const ms = parseIsoTimestampMs(text);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** ECMAScript's time value range (±100,000,000 days around the epoch). */
export const MAX_DATE_MS = 8.64e15;
