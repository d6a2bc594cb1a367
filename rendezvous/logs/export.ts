/**
 * The activity report of `sala-rendezvous logs export` and `GET /api/logs` (CONTRACT.md, "Export
 * shape"): the query parameters, and the JSON and CSV renderings of the records.
 */
import { ConfigInvalidError, normalizeUserName } from '../../common/index.js';
import { normalizeIsoTimestamp, parseIsoTimestampMs, type LogQuery, type LogRecord } from '../store/index.js';

/** The exported columns, in order. `source` and storage fields stay out: the contract fixes the shape. */
export const LOG_EXPORT_FIELDS = Object.freeze(['id', 'at', 'user', 'session', 'event', 'detail'] as const);

export type LogExportField = (typeof LOG_EXPORT_FIELDS)[number];
export type LogExportRecord = Pick<LogRecord, LogExportField>;
export type LogExportFormat = 'json' | 'csv';

export const LOG_EXPORT_FORMATS: readonly LogExportFormat[] = Object.freeze(['json', 'csv']);

/** Media types for the admin API (RFC 4180 registers text/csv with `header`). */
export const LOG_EXPORT_MEDIA_TYPES: Readonly<Record<LogExportFormat, string>> = Object.freeze({
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
});

function pickExportFields(record: LogExportRecord): LogExportRecord {
  return {
    id: record.id,
    at: record.at,
    user: record.user,
    session: record.session,
    event: record.event,
    detail: record.detail,
  };
}

/**
 * One JSON array of `{id, at, user, session, event, detail}` objects and nothing else, one record
 * per line so a large report stays readable and greppable; ends with a newline.
 */
export function formatLogsJson(records: readonly LogExportRecord[]): string {
  if (records.length === 0) return '[]\n';
  return `[\n${records.map((record) => JSON.stringify(pickExportFields(record))).join(',\n')}\n]\n`;
}

/**
 * A cell a spreadsheet would run as a formula starts with one of these (OWASP, "CSV Injection"):
 * `=`, `+`, `-`, `@`, TAB or CR. Such a cell gets a leading `'`, which spreadsheets show as text.
 * The cost: a value that really starts with `-` (a negative number, an id) reads back with the
 * quote; the JSON export is the lossless one.
 */
const FORMULA_TRIGGER = /^[=+\-@\t\r]/;
/** RFC 4180 §2.6: a field holding a comma, a double quote or a line break is enclosed in quotes. */
const NEEDS_QUOTES = /[",\r\n]/;

export function csvCell(value: string): string {
  const text = FORMULA_TRIGGER.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** RFC 4180 CSV: a header row, CRLF after every row (the last included), neutralised formula cells. */
export function formatLogsCsv(records: readonly LogExportRecord[]): string {
  const rows = [LOG_EXPORT_FIELDS.join(',')];
  for (const record of records) rows.push(LOG_EXPORT_FIELDS.map((field) => csvCell(record[field])).join(','));
  return `${rows.join('\r\n')}\r\n`;
}

/** Parameters as they come from the CLI or a URL: absent, null and '' all mean "not given". */
export interface LogQueryParams {
  user?: string | null | undefined;
  since?: string | null | undefined;
  until?: string | null | undefined;
  format?: string | null | undefined;
}

export interface ParsedLogQuery {
  query: LogQuery;
  format: LogExportFormat;
}

/** True when the parameter is given; a non-string (a caller bypassing the types) is refused. */
function given(name: keyof LogQueryParams, value: unknown): value is string {
  if (value === undefined || value === null || value === '') return false;
  if (typeof value !== 'string') throw new ConfigInvalidError(name, 'is not a string');
  return true;
}

function parseTimeParam(name: 'since' | 'until', value: string): string {
  const normalized = normalizeIsoTimestamp(value.trim());
  if (normalized === undefined) {
    throw new ConfigInvalidError(
      name,
      `is not an ISO 8601 date or date-time (e.g. 2024-03-01 or 2024-03-01T08:00:00Z; no offset means UTC)`,
    );
  }
  return normalized;
}

/**
 * Validates the export parameters: `user` is normalised (SALA_E_INVALID_NAME when it cannot be a
 * user name), `since`/`until` must be ISO 8601 and are returned in canonical UTC form, `until` may
 * not precede `since`, and `format` is json (the default) or csv; any other value is
 * SALA_E_CONFIG_INVALID naming the parameter.
 */
export function parseLogQuery(params: LogQueryParams): ParsedLogQuery {
  const query: LogQuery = {};
  if (given('user', params.user)) query.user = normalizeUserName(params.user);
  if (given('since', params.since)) query.since = parseTimeParam('since', params.since);
  if (given('until', params.until)) query.until = parseTimeParam('until', params.until);
  if (query.since !== undefined && query.until !== undefined) {
    if ((parseIsoTimestampMs(query.until) ?? 0) < (parseIsoTimestampMs(query.since) ?? 0)) {
      throw new ConfigInvalidError('until', `is earlier than "since" (${query.since}), so nothing could match`);
    }
  }
  let format: LogExportFormat = 'json';
  if (given('format', params.format)) {
    const wanted = params.format.trim().toLowerCase();
    if (wanted !== 'json' && wanted !== 'csv') throw new ConfigInvalidError('format', 'must be json or csv');
    format = wanted;
  }
  return { query, format };
}
