import { describe, expect, it } from 'vitest';

import { csvCell, formatLogsCsv, formatLogsJson, parseLogQuery } from '../../../../rendezvous/logs/export.js';
import type { LogRecord } from '../../../../rendezvous/store/store.js';
import { catchSalaError } from '../../../helpers/errors.js';

const HEADER = 'id,at,user,session,event,detail';

function record(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    id: 'ev1',
    at: '2024-03-01T08:00:00.000Z',
    user: 'alice',
    session: 'sess-1',
    event: 'file.completed',
    detail: 'size=12',
    source: 'peer',
    ...overrides,
  };
}

/** A strict RFC 4180 reader, to check what a spreadsheet would see. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      i += 1;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        if (text[i] === '"' && text[i + 1] === '"') {
          cell += '"';
          i += 2;
        } else if (text[i] === '"') {
          i += 1;
          break;
        } else {
          cell += text[i];
          i += 1;
        }
      }
    }
    if (text.startsWith('\r\n', i)) {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i += 2;
    } else if (text[i] === ',') {
      row.push(cell);
      cell = '';
      i += 1;
    } else if (i < text.length) {
      if (text[i] === '"' || text[i] === '\r' || text[i] === '\n') throw new Error(`bare ${JSON.stringify(text[i])} at ${i}`);
      cell += text[i];
      i += 1;
    }
  }
  if (cell !== '' || row.length > 0) throw new Error('last row does not end with CRLF');
  return rows;
}

describe('formatLogsCsv', () => {
  it('starts with the header row id,at,user,session,event,detail', () => {
    expect(formatLogsCsv([record()]).split('\r\n')[0]).toBe(HEADER);
  });

  it('writes only the header row, CRLF-terminated, for an empty result', () => {
    expect(formatLogsCsv([])).toBe(`${HEADER}\r\n`);
  });

  it('ends every row with CRLF and never uses a bare LF', () => {
    const csv = formatLogsCsv([record({ id: 'a' }), record({ id: 'b' })]);
    expect(csv).toBe(`${HEADER}\r\na,2024-03-01T08:00:00.000Z,alice,sess-1,file.completed,size=12\r\nb,2024-03-01T08:00:00.000Z,alice,sess-1,file.completed,size=12\r\n`);
    expect(csv.replaceAll('\r\n', '')).not.toMatch(/[\r\n]/);
  });

  it('leaves out source and any field beyond the six columns', () => {
    const extra = { ...record({ source: 'server' }), _id: 'nedb-id', atMs: 1 } as LogRecord;
    const rows = parseCsv(formatLogsCsv([extra]));
    expect(rows[1]).toEqual(['ev1', '2024-03-01T08:00:00.000Z', 'alice', 'sess-1', 'file.completed', 'size=12']);
  });

  it.each([
    ['a DDE payload', "=cmd|' /C calc'!A0"],
    ['a leading plus', '+1'],
    ['a leading minus', '-1'],
    ['a leading at sign', '@SUM(1)'],
    ['a leading tab', '\t=1+1'],
    ['a leading carriage return', '\r=1+1'],
  ])('neutralises %s with a leading single quote', (_name, value) => {
    const rows = parseCsv(formatLogsCsv([record({ detail: value })]));
    expect(rows[1]?.[5]).toBe(`'${value}`);
  });

  it('neutralises a formula in any column, not only detail', () => {
    const rows = parseCsv(formatLogsCsv([record({ id: '-x', user: '=1', session: '+2', event: '@3' })]));
    expect(rows[1]?.slice(0, 5)).toEqual(["'-x", '2024-03-01T08:00:00.000Z', "'=1", "'+2", "'@3"]);
  });

  it('leaves a cell alone when the trigger character is not first', () => {
    expect(csvCell('a=1+2-3@4')).toBe('a=1+2-3@4');
  });

  it('quotes a cell holding a comma', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
  });

  it('quotes a cell holding a double quote and doubles the quote', () => {
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
  });

  it('quotes cells holding LF, CR or CRLF so a record stays one row', () => {
    const details = ['line1\nline2', 'line1\rline2', 'line1\r\nline2'];
    const rows = parseCsv(formatLogsCsv(details.map((detail, i) => record({ id: `r${i}`, detail }))));
    expect(rows).toHaveLength(4);
    expect(rows.slice(1).map((row) => row[5])).toEqual(details);
  });

  it('quotes a neutralised cell that also holds a comma', () => {
    expect(csvCell('=HYPERLINK("http://x",1)')).toBe('"\'=HYPERLINK(""http://x"",1)"');
  });

  it('gives every row exactly six cells whatever the content', () => {
    const nasty = record({ id: 'a,b', user: '"', session: '\r\n', event: ',,,', detail: '"\n,=' });
    const rows = parseCsv(formatLogsCsv([nasty]));
    expect(rows.map((row) => row.length)).toEqual([6, 6]);
  });
});

describe('formatLogsJson', () => {
  it('writes one JSON array of objects with exactly id, at, user, session, event and detail', () => {
    const extra = { ...record(), _id: 'nedb-id', atMs: 1 } as LogRecord;
    const parsed: unknown = JSON.parse(formatLogsJson([extra, record({ id: 'ev2', source: 'server' })]));
    expect(Array.isArray(parsed)).toBe(true);
    for (const item of parsed as Record<string, unknown>[]) {
      expect(Object.keys(item)).toEqual(['id', 'at', 'user', 'session', 'event', 'detail']);
    }
    expect((parsed as unknown[])[0]).toStrictEqual({
      id: 'ev1',
      at: '2024-03-01T08:00:00.000Z',
      user: 'alice',
      session: 'sess-1',
      event: 'file.completed',
      detail: 'size=12',
    });
  });

  it('never includes source or _id', () => {
    const text = formatLogsJson([{ ...record(), _id: 'nedb-id' } as LogRecord]);
    expect(text).not.toContain('source');
    expect(text).not.toContain('_id');
    expect(text).not.toContain('nedb-id');
  });

  it('writes an empty array for an empty result', () => {
    expect(JSON.parse(formatLogsJson([]))).toEqual([]);
  });

  it('keeps values verbatim, formula-looking ones included', () => {
    const parsed = JSON.parse(formatLogsJson([record({ detail: '=1+1\n"x"' })])) as { detail: string }[];
    expect(parsed[0]?.detail).toBe('=1+1\n"x"');
  });
});

describe('parseLogQuery', () => {
  it('defaults to json with no filters', () => {
    expect(parseLogQuery({})).toEqual({ query: {}, format: 'json' });
  });

  it('treats empty and null parameters as not given', () => {
    expect(parseLogQuery({ user: '', since: null, until: '', format: '' })).toEqual({ query: {}, format: 'json' });
  });

  it('accepts csv and json in any case', () => {
    expect(parseLogQuery({ format: 'csv' }).format).toBe('csv');
    expect(parseLogQuery({ format: 'JSON' }).format).toBe('json');
  });

  it('normalises the user name', () => {
    expect(parseLogQuery({ user: 'ＡＬＩＣＥ' }).query.user).toBe('alice');
  });

  it('returns since and until in canonical UTC form', () => {
    const { query } = parseLogQuery({ since: '2024-03-01T09:00:00+01:00', until: '2024-03-02' });
    expect(query).toEqual({ since: '2024-03-01T08:00:00.000Z', until: '2024-03-02T00:00:00.000Z' });
  });

  it('reads a date-time without an offset as UTC', () => {
    expect(parseLogQuery({ since: '2024-03-01T08:00' }).query.since).toBe('2024-03-01T08:00:00.000Z');
  });

  it('refuses an unknown format with SALA_E_CONFIG_INVALID naming format', () => {
    expect(catchSalaError(() => parseLogQuery({ format: 'xml' }), 'SALA_E_CONFIG_INVALID').message).toContain('"format"');
  });

  it.each(['yesterday', '2024-02-30', '2024-03-01T25:00Z', 'Tue, 01 Mar 2024 08:00:00 GMT', '1709280000000'])(
    'refuses since=%j with SALA_E_CONFIG_INVALID naming since',
    (since) => {
      expect(catchSalaError(() => parseLogQuery({ since }), 'SALA_E_CONFIG_INVALID').message).toContain('"since"');
    },
  );

  it('refuses an unparseable until with SALA_E_CONFIG_INVALID naming until', () => {
    expect(catchSalaError(() => parseLogQuery({ until: 'soon' }), 'SALA_E_CONFIG_INVALID').message).toContain('"until"');
  });

  it('refuses an until earlier than since with SALA_E_CONFIG_INVALID naming until', () => {
    const err = catchSalaError(() => parseLogQuery({ since: '2024-03-02', until: '2024-03-01' }), 'SALA_E_CONFIG_INVALID');
    expect(err.message).toContain('"until"');
  });

  it('accepts since equal to until (an empty range)', () => {
    expect(parseLogQuery({ since: '2024-03-01', until: '2024-03-01' }).query.until).toBe('2024-03-01T00:00:00.000Z');
  });

  it('refuses an invalid user name with SALA_E_INVALID_NAME', () => {
    catchSalaError(() => parseLogQuery({ user: '../etc' }), 'SALA_E_INVALID_NAME');
  });

  it('refuses a non-string parameter with SALA_E_CONFIG_INVALID', () => {
    const params = { user: ['alice'] } as unknown as { user: string };
    expect(catchSalaError(() => parseLogQuery(params), 'SALA_E_CONFIG_INVALID').message).toContain('"user"');
  });
});
