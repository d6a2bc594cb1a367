import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, sep } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { MAX_SAFE_NAME_BYTES, safeFileName, uniquePath } from '../../../../peer/files/safe-name.js';
import { catchSalaError } from '../../../helpers/errors.js';

const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');
const RESERVED_DEVICE = /^(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³]) *(?:\.|$)/iu;
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/u;
const BIDI_CONTROL = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
const FAMILY = '👨\u200D👩\u200D👧';

/** A fresh temporary folder, removed when the test finishes. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sala-safe-name-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function isInside(dir: string, path: string): boolean {
  const inside = relative(dir, path);
  return inside !== '' && !isAbsolute(inside) && !inside.split(sep).includes('..');
}

describe('safeFileName', () => {
  const table: readonly (readonly [label: string, offered: string, expected: string])[] = [
    // paths: only the last component survives
    ['a relative path up the tree', '../../etc/passwd', 'passwd'],
    ['a Windows relative path up the tree', '..\\..\\Windows\\system32\\x.dll', 'x.dll'],
    ['mixed separators', 'a/b\\c/d.txt', 'd.txt'],
    ['an absolute POSIX path', '/absolute/path', 'path'],
    ['a path ending in a separator', 'some/dir/', 'file'],
    ['a path ending in ..', 'some/dir/..', 'file'],
    ['a drive-absolute path', 'C:\\evil.txt', 'evil.txt'],
    ['a drive-relative path', 'C:evil.txt', 'evil.txt'],
    ['a bare drive', 'C:', 'file'],
    ['a \\\\?\\ long path', '\\\\?\\C:\\x', 'x'],
    ['a \\\\.\\ device path', '\\\\.\\PhysicalDrive0', 'PhysicalDrive0'],
    ['a \\\\.\\ path to a device name', '\\\\.\\CON', '_CON'],
    ['a \\\\?\\ path to a bare drive', '\\\\?\\C:', 'file'],
    ['a UNC path', '\\\\server\\share\\doc.txt', 'doc.txt'],
    ['a \\\\?\\UNC path', '\\\\?\\UNC\\server\\share', 'share'],
    // colons: drive letter first, then NTFS streams
    ['a one-letter name with a colon (read as a drive, as Windows does)', 'a:b', 'b'],
    ['the default data stream', 'file.txt::$DATA', 'file.txt'],
    ['a named stream', 'file.txt:hidden.exe', 'file.txt'],
    ['a named stream with a type', 'file.txt:stream:$DATA', 'file.txt'],
    ['a colon in a longer name', 'notes:draft.txt', 'notes'],
    ['a name that is only a stream', ':stream', 'file'],
    // Windows device names, any case, with or without extension
    ['CON', 'CON', '_CON'],
    ['lower-case con', 'con', '_con'],
    ['PRN with an extension', 'prn.log', '_prn.log'],
    ['AUX', 'Aux', '_Aux'],
    ['nul.txt', 'nul.txt', '_nul.txt'],
    ['COM0', 'COM0', '_COM0'],
    ['Com1.tar.gz', 'Com1.tar.gz', '_Com1.tar.gz'],
    ['LPT9 with an extension', 'lpt9.doc', '_lpt9.doc'],
    ['LPT¹', 'LPT¹', '_LPT¹'],
    ['COM³ with an extension', 'com³.txt', '_com³.txt'],
    ['CONIN$', 'conin$', '_conin$'],
    ['CONOUT$ with an extension', 'CONOUT$.txt', '_CONOUT$.txt'],
    ['a device name with spaces before the extension', 'CON .txt', '_CON .txt'],
    ['a device name with a trailing dot', 'nul.', '_nul'],
    ['a device name followed by a stream', 'NUL:x', '_NUL'],
    ['a device name as the last component of a path', 'dir/aux.c', '_aux.c'],
    ['a device name as a hidden file', '.con', '_con'],
    ['a longer name that starts like a device', 'CONSOLE.txt', 'CONSOLE.txt'],
    ['COM10 (not a device)', 'COM10', 'COM10'],
    ['LPT with a letter (not a device)', 'LPTX.txt', 'LPTX.txt'],
    ['a device name with a dot inside the stem', 'x.CON', 'x.CON'],
    // dots and spaces
    ['trailing dots and spaces', 'name. . .', 'name'],
    ['leading and trailing spaces', ' spaces ', 'spaces'],
    ['spaces inside', 'my file .txt', 'my file .txt'],
    ['a hidden file', '.bashrc', '_bashrc'],
    ['several leading dots', '...hidden', '___hidden'],
    ['a space then a dot', ' .profile', '_profile'],
    ['..', '..', 'file'],
    ['.', '.', 'file'],
    ['the empty name', '', 'file'],
    ['only dots', '...', 'file'],
    ['only dots and spaces', ' . . ', 'file'],
    // control and forbidden characters
    ['a leading NUL', '\u0000evil', '_evil'],
    ['a newline', 'a\nb', 'a_b'],
    ['a tab and a carriage return', 'a\tb\r.txt', 'a_b_.txt'],
    ['DEL', 'del\u007F.txt', 'del_.txt'],
    ['a C1 control (NEL)', 'c1\u0085x', 'c1_x'],
    ['the line and paragraph separators', 'a\u2028b\u2029c', 'a_b_c'],
    ['every character Windows forbids', 'a<b>c"d|e?f*g', 'a_b_c_d_e_f_g'],
    ['only forbidden characters', '???', '___'],
    // disguised extensions
    ['a right-to-left override', 'invoice\u202Efdp.exe', 'invoicefdp.exe'],
    ['every bidi embedding and override', '\u202Aa\u202Bb\u202Cc\u202Dd\u202Ee.txt', 'abcde.txt'],
    ['bidi isolates', '\u2066x\u2067y\u2068z\u2069.txt', 'xyz.txt'],
    ['bidi marks', 'a\u200Eb\u200Fc\u061C.txt', 'abc.txt'],
    ['zero-width characters', 'a\u200Bb\u200Cc\u2060d\uFEFF.pdf', 'abcd.pdf'],
    ['a zero-width joiner before the extension', 'report.pdf\u200D.exe', 'report.pdf.exe'],
    ['a zero-width joiner between letters', 'pd\u200Df', 'pdf'],
    ['an override hiding a trailing dot', 'x.\u202E', 'x'],
    // Unicode
    ['é in NFD', 'e\u0301t\u0301e\u0301.txt', '\u00E9t\u0301\u00E9.txt'],
    ['a combining mark separated by a zero-width space', 'e\u200B\u0301.txt', '\u00E9.txt'],
    ['< with a combining solidus (NFC makes it ≮)', 'a<\u0338b', 'a\u226Eb'],
    ['an emoji', '😀 party.png', '😀 party.png'],
    ['an emoji ZWJ sequence', `${FAMILY}.jpg`, `${FAMILY}.jpg`],
    ['an emoji ZWJ sequence with a skin tone', '👩🏽\u200D💻', '👩🏽\u200D💻'],
    ['an emoji ZWJ sequence with FE0F', '🏳\uFE0F\u200D🌈', '🏳\uFE0F\u200D🌈'],
    ['a ZWJ after an emoji but before a letter', '😀\u200Dexe', '😀exe'],
    ['a lone high surrogate', '\uD800x.txt', '\uFFFDx.txt'],
    ['a lone low surrogate', 'x\uDC00', 'x\uFFFD'],
    ['CJK', '報告書.docx', '報告書.docx'],
    ['right-to-left letters', 'ملف.txt', 'ملف.txt'],
    ['fullwidth look-alikes of forbidden characters (allowed on Windows)', 'a：b／c.txt', 'a：b／c.txt'],
    // length: at most 200 bytes, extension kept when it is at most 16 bytes
    ['300 ASCII bytes without extension', 'a'.repeat(300), 'a'.repeat(200)],
    ['300 ASCII bytes with an extension', `${'a'.repeat(296)}.txt`, `${'a'.repeat(196)}.txt`],
    ['a 16-byte extension', `${'a'.repeat(300)}.${'x'.repeat(16)}`, `${'a'.repeat(183)}.${'x'.repeat(16)}`],
    ['a 17-byte extension (cut as a whole)', `${'a'.repeat(300)}.${'x'.repeat(17)}`, 'a'.repeat(200)],
    ['a 290-byte extension', `${'a'.repeat(10)}.${'b'.repeat(290)}`, `${'a'.repeat(10)}.${'b'.repeat(189)}`],
    ['300 bytes of 2-byte letters', 'é'.repeat(150), 'é'.repeat(100)],
    ['300 bytes of 2-byte letters with an extension', `${'é'.repeat(150)}.txt`, `${'é'.repeat(98)}.txt`],
    ['300 bytes of 3-byte letters (cut at a code point)', '日'.repeat(100), '日'.repeat(66)],
    ['300 bytes of 3-byte letters with an extension', `${'日'.repeat(100)}.pdf`, `${'日'.repeat(65)}.pdf`],
    ['a 3-byte extension', `${'a'.repeat(300)}.日本`, `${'a'.repeat(193)}.日本`],
    ['300 bytes of emoji', '😀'.repeat(75), '😀'.repeat(50)],
    ['emoji ZWJ sequences, cut between sequences', FAMILY.repeat(20), FAMILY.repeat(11)],
    ['decomposed letters, cut between graphemes', 'e\u0301\u0323'.repeat(60), '\u1EB9\u0301'.repeat(40)],
    ['a cut that leaves a trailing space', `${'a'.repeat(199)} ${'b'.repeat(100)}`, 'a'.repeat(199)],
    ['a cut stem that ends in dots', `${'a'.repeat(195)}..${'b'.repeat(100)}.txt`, `${'a'.repeat(195)}.txt`],
    [
      'one grapheme over the limit (a ZWJ chain), cut by code point without a dangling ZWJ',
      `x${'👨\u200D'.repeat(40)}👨`,
      `x${'👨\u200D'.repeat(27)}👨`,
    ],
    ['one letter with 200 combining marks', `a${'\u0301'.repeat(200)}`, `\u00E1${'\u0301'.repeat(99)}`],
    ['a long device name with a long extension', `CON.${'x'.repeat(300)}`, `_CON.${'x'.repeat(195)}`],
    ['a long device name with a short extension', `nul.${'x'.repeat(300)}.txt`, `_nul.${'x'.repeat(191)}.txt`],
    [
      'a cut that turns the stem into a device name',
      `CON${' '.repeat(200)}x.txt`,
      '_CON.txt',
    ],
    ['a long path whose last component is short', `${'../'.repeat(100)}x.txt`, 'x.txt'],
  ];

  it.each(table)('sanitises %s', (_label, offered, expected) => {
    const name = safeFileName(offered);
    expect(name).toBe(expected);
    expect(bytes(name)).toBeLessThanOrEqual(MAX_SAFE_NAME_BYTES);
  });

  it('returns each name of the table unchanged when given it again', () => {
    for (const [, offered] of table) {
      const once = safeFileName(offered);
      expect(safeFileName(once)).toBe(once);
    }
  });

  it('keeps a stem cut by the byte limit as long as it can be', () => {
    // The stem gets 200 - 4 = 196 bytes, room for 65 three-byte letters and 1 byte unused.
    expect(bytes(safeFileName(`${'日'.repeat(100)}.txt`))).toBe(199);
  });
});

/** Fragments that exercise every rule, mixed with arbitrary text and lone surrogates. */
const hostileFragment = fc.oneof(
  fc.constantFrom(
    '/', '\\', ':', '.', '..', ' ', '. ', 'C:', '\\\\?\\', '\\\\.\\', '::$DATA', 'CON', 'nul', 'Com1', 'LPT¹',
    'conin$', '.txt', '.tar.gz', '\u0000', '\n', '\u007F', '\u0085', '\u2028', '<', '>', '"', '|', '?', '*',
    '\u202E', '\u2066', '\u200B', '\u200D', '\uFEFF', '\u0301', '\u0338', 'e\u0301', 'é', '日本', '😀', FAMILY,
    '👩🏽', '\uFE0F', '_',
  ),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => String.fromCharCode(unit)),
  // Runs long enough to hit the byte limit, including single graphemes longer than it.
  fc
    .constantFrom('a', 'é', '日', '😀', ' ', '.', 'x ', '\u0301', '😀\u200D', 'e\u0301\u0323')
    .chain((unit) => fc.nat({ max: 120 }).map((n) => unit.repeat(n))),
);
const mixedName = fc.array(hostileFragment, { maxLength: 30 }).map((parts) => parts.join(''));
/** Half the names start like a device name or a drive, so the rules meet the byte limit there too. */
const hostileName = fc.oneof(
  mixedName,
  fc
    .tuple(fc.constantFrom('CON', 'nul.', 'Com1 ', 'LPT¹.', 'aux', '.', 'C:', ' '), mixedName)
    .map(([start, rest]) => start + rest),
);

describe('safeFileName properties', () => {
  it('always returns a short, plain, portable name', () => {
    const dir = join(tmpdir(), 'sala-downloads');
    fc.assert(
      fc.property(hostileName, (offered) => {
        const name = safeFileName(offered);
        expect(name).not.toBe('');
        expect(name).not.toBe('.');
        expect(name).not.toBe('..');
        expect(bytes(name)).toBeLessThanOrEqual(MAX_SAFE_NAME_BYTES);
        expect(name).not.toMatch(/[/\\:<>"|?*]/u);
        expect(name).not.toMatch(CONTROL);
        expect(name).not.toMatch(BIDI_CONTROL);
        expect(name).not.toMatch(/\p{Cs}/u);
        expect(name).not.toMatch(RESERVED_DEVICE);
        expect(name).not.toMatch(/^[. ]|[. ]$/u);
        expect(name.normalize('NFC')).toBe(name);
        expect(isInside(dir, join(dir, name))).toBe(true);
      }),
      { numRuns: 3_000 },
    );
  });

  it('returns its own output unchanged', () => {
    fc.assert(
      fc.property(hostileName, (offered) => {
        const name = safeFileName(offered);
        expect(safeFileName(name)).toBe(name);
      }),
      { numRuns: 3_000 },
    );
  });

  it('leaves ordinary names alone', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9 _()-]{0,40}[A-Za-z0-9_)-]$/u);
    const ordinary = fc
      .tuple(word, fc.option(fc.stringMatching(/^[a-z0-9]{1,8}$/u), { nil: undefined }))
      .map(([stem, ext]) => (ext === undefined ? stem : `${stem}.${ext}`))
      .filter((name) => !RESERVED_DEVICE.test(name));
    fc.assert(
      fc.property(ordinary, (name) => {
        expect(safeFileName(name)).toBe(name);
      }),
    );
  });
});

describe('uniquePath', () => {
  it('returns the name itself in the folder when it is free', () => {
    const dir = tempDir();
    expect(uniquePath(dir, 'report.pdf')).toBe(join(dir, 'report.pdf'));
  });

  it('numbers the name before its extension when the file exists', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'report.pdf'), '');
    expect(uniquePath(dir, 'report.pdf')).toBe(join(dir, 'report (1).pdf'));
  });

  it('counts up past every existing numbered copy', () => {
    const dir = tempDir();
    for (const name of ['report.pdf', 'report (1).pdf', 'report (2).pdf']) writeFileSync(join(dir, name), '');
    expect(uniquePath(dir, 'report.pdf')).toBe(join(dir, 'report (3).pdf'));
  });

  it('takes the first free number even when a later one exists', () => {
    const dir = tempDir();
    for (const name of ['report.pdf', 'report (2).pdf']) writeFileSync(join(dir, name), '');
    expect(uniquePath(dir, 'report.pdf')).toBe(join(dir, 'report (1).pdf'));
  });

  it('counts a dangling symlink as taken', () => {
    const dir = tempDir();
    symlinkSync(join(dir, 'missing-target'), join(dir, 'link.txt'));
    expect(uniquePath(dir, 'link.txt')).toBe(join(dir, 'link (1).txt'));
  });

  it('counts a folder as taken', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'photos'));
    expect(uniquePath(dir, 'photos')).toBe(join(dir, 'photos (1)'));
  });

  it('skips paths the caller reserves and passes it full candidate paths', () => {
    const dir = tempDir();
    const asked: string[] = [];
    const reserved = new Set([join(dir, 'a.txt'), join(dir, 'a (1).txt')]);
    const path = uniquePath(dir, 'a.txt', (candidate) => {
      asked.push(candidate);
      return reserved.has(candidate);
    });
    expect(path).toBe(join(dir, 'a (2).txt'));
    expect(asked).toEqual([join(dir, 'a.txt'), join(dir, 'a (1).txt'), join(dir, 'a (2).txt')]);
  });

  it('skips both existing files and reservations', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), '');
    const path = uniquePath(dir, 'a.txt', (candidate) => candidate === join(dir, 'a (1).txt'));
    expect(path).toBe(join(dir, 'a (2).txt'));
  });

  it('appends the number to a name without extension', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'README'), '');
    expect(uniquePath(dir, 'README')).toBe(join(dir, 'README (1)'));
  });

  it('numbers only the last extension of a multi-dot name', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'archive.tar.gz'), '');
    expect(uniquePath(dir, 'archive.tar.gz')).toBe(join(dir, 'archive.tar (1).gz'));
  });

  it('treats a name starting with a dot as having no extension', () => {
    const dir = tempDir();
    writeFileSync(join(dir, '.bashrc'), '');
    expect(uniquePath(dir, '.bashrc')).toBe(join(dir, '.bashrc (1)'));
  });

  it('numbers a sanitised hidden-file name like any other', () => {
    const dir = tempDir();
    const name = safeFileName('.bashrc');
    writeFileSync(join(dir, name), '');
    expect(uniquePath(dir, name)).toBe(join(dir, '_bashrc (1)'));
  });

  it('numbers a sanitised maximum-length name within the 255-byte limit', () => {
    const dir = tempDir();
    const name = safeFileName(`${'é'.repeat(200)}.txt`);
    const path = uniquePath(dir, name, (candidate) => !candidate.includes('(9999)'));
    expect(path).toBe(join(dir, `${'é'.repeat(98)} (9999).txt`));
    expect(bytes(`${relative(dir, path)}.part`)).toBeLessThanOrEqual(255);
  });

  it('throws SALA_E_DOWNLOADS_DIR after 10,000 taken candidates', () => {
    const dir = tempDir();
    let asked = 0;
    const err = catchSalaError(
      () =>
        uniquePath(dir, 'a.txt', () => {
          asked += 1;
          return true;
        }),
      'SALA_E_DOWNLOADS_DIR',
    );
    expect(asked).toBe(10_000);
    expect(err.message).toContain('a.txt');
  });

  it.each(['', '.', '..', '../x', 'a/b', 'a\\b', '/etc/passwd', 'a\u0000b'])(
    'refuses %j, which is not a plain file name, with SALA_E_DOWNLOADS_DIR',
    (name) => {
      const dir = tempDir();
      catchSalaError(() => uniquePath(dir, name), 'SALA_E_DOWNLOADS_DIR');
    },
  );

  it('throws SALA_E_DOWNLOADS_DIR when the folder is a file', () => {
    const dir = tempDir();
    const notAFolder = join(dir, 'file');
    writeFileSync(notAFolder, '');
    catchSalaError(() => uniquePath(notAFolder, 'a.txt'), 'SALA_E_DOWNLOADS_DIR');
  });

  it('keeps every sanitised name inside the folder', () => {
    const dir = tempDir();
    fc.assert(
      fc.property(hostileName, (offered) => {
        expect(isInside(dir, uniquePath(dir, safeFileName(offered)))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
