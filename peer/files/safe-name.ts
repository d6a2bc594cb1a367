import { lstatSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { SalaError } from '../../common/index.js';

/**
 * File names offered by another peer are untrusted: they are never used as paths, only turned into
 * one plain name that is valid on Windows, macOS and Linux alike (the strictest rules win, since a
 * download may later be copied to a Windows machine or a FAT/exFAT stick).
 */

/** Leaves room for ` (9999)` from uniquePath and `.part` while receiving, under the usual 255-byte limit. */
export const MAX_SAFE_NAME_BYTES = 200;
/** A longer "extension" is more likely part of the name than a type, so the whole name is cut instead. */
const MAX_KEPT_EXTENSION_BYTES = 16;
const FALLBACK_NAME = 'file';
const MAX_UNIQUE_TRIES = 10_000;

/** `C:` at the start of a component: Windows reads `C:name` as a path relative to drive C's cwd. */
const DRIVE_PREFIX = /^[A-Za-z]:/;
/** WTF-16 halves that UTF-8 cannot encode (fs would write U+FFFD on Unix and the raw unit on Windows). */
const LONE_SURROGATE = /\p{Cs}/gu;
/**
 * Invisible characters that can make a name display as something it is not: every bidi control
 * (`invoice\u202Efdp.exe` shows as "invoiceexe.pdf") and the zero-width ones. ZWJ is handled apart.
 */
const INVISIBLE = /[\u061C\u200B\u200C\u200E\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]/gu;
/**
 * A ZWJ that does not join two emoji (UTS #51 ZWJ sequences such as 👩🏽‍💻: pictograph, optional
 * FE0F or skin tone, ZWJ, pictograph). Inside such a sequence it cannot hide or move text.
 */
const STRAY_ZWJ = /(?<!\p{Extended_Pictographic}[\uFE0F\u{1F3FB}-\u{1F3FF}]?)\u200D|\u200D(?!\p{Extended_Pictographic})/gu;
/** C0, DEL, C1, the characters Windows forbids, and the Unicode line/paragraph separators. */
const FORBIDDEN = /[\u0000-\u001F\u007F-\u009F<>:"/\\|?*\u2028\u2029]/gu;
/**
 * Windows device names, which open the device whatever the extension (`nul.txt`, `COM1.tar.gz`) and
 * with spaces before the dot (`CON .txt`); the superscript digits count too (¹ ² ³ are digits to Win32).
 */
const RESERVED_DEVICE = /^(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³]) *(?:\.|$)/iu;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * A name safe to create inside the downloads dir on Windows, macOS and Linux alike.
 *
 * NFC; the last component after `/` or `\` (so UNC and `\\?\` prefixes go too); no drive letter; no
 * NTFS stream (everything from the first `:` on); bidi controls, zero-width characters and ZWJs outside
 * emoji removed; control and Windows-forbidden characters replaced by `_`; leading spaces and trailing
 * dots and spaces removed; each leading dot replaced by `_` (no hidden files on Unix: `.bashrc` →
 * `_bashrc`); Windows device names prefixed with `_`; nothing left → `file`; at most 200 UTF-8 bytes,
 * cut at a grapheme (or, inside one huge grapheme, code point) boundary, keeping an extension of up to 16 bytes.
 * The result is never empty, `.` or `..`, and safeFileName(safeFileName(x)) === safeFileName(x).
 */
export function safeFileName(offered: string): string {
  const cleaned = cleanName(offered);
  if (cleaned === '') return FALLBACK_NAME;
  let name = fitBytes(cleaned);
  // Checked after the cut, which can end a stem in spaces before the extension (`CON   …x.txt`).
  if (RESERVED_DEVICE.test(name)) name = fitBytes(`_${name}`);
  return name;
}

/**
 * The final path for `safeName` in `dir` that does not exist yet and is not reserved:
 * `name.ext`, then `name (1).ext`, `name (2).ext`… (the extension is what follows the last dot of a
 * name that does not start with a dot; `archive.tar.gz` → `archive.tar (1).gz`, `.bashrc` →
 * `.bashrc (1)`). Anything at the path counts as taken, a dangling symlink included. `isTaken(path)`
 * lets the caller also skip names reserved by transfers in progress; it gets the full candidate path.
 *
 * `safeName` should come from safeFileName. A name that is not one plain component (empty, `.`,
 * `..`, containing a separator or NUL) is refused, as is any result outside `dir`. Throws
 * SALA_E_DOWNLOADS_DIR for those, when `dir` cannot be inspected, and after 10,000 taken candidates.
 */
export function uniquePath(dir: string, safeName: string, isTaken: (path: string) => boolean = () => false): string {
  if (safeName === '' || safeName === '.' || safeName === '..' || /[/\\\0]/u.test(safeName)) {
    throw new SalaError('SALA_E_DOWNLOADS_DIR', `Refusing to save a file as "${safeName}": it is not a plain file name.`);
  }
  const dot = safeName.lastIndexOf('.');
  const stem = dot > 0 ? safeName.slice(0, dot) : safeName;
  const extension = dot > 0 ? safeName.slice(dot) : '';
  for (let n = 0; n < MAX_UNIQUE_TRIES; n++) {
    const candidate = join(dir, n === 0 ? safeName : `${stem} (${n})${extension}`);
    assertInside(dir, candidate);
    if (!isOccupied(candidate) && !isTaken(candidate)) return candidate;
  }
  throw new SalaError(
    'SALA_E_DOWNLOADS_DIR',
    `The downloads folder ${dir} already holds ${MAX_UNIQUE_TRIES} files named like "${safeName}"; ` +
      'move or delete some of them and retry.',
  );
}

/** Every rule but the length limit; may return ''. */
function cleanName(offered: string): string {
  let name = offered.normalize('NFC');
  name = name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1);
  name = name.replace(DRIVE_PREFIX, '');
  const streamAt = name.indexOf(':');
  if (streamAt !== -1) name = name.slice(0, streamAt);
  name = name.replace(LONE_SURROGATE, '\uFFFD').replace(INVISIBLE, '').replace(STRAY_ZWJ, '');
  // Again: a removed character may have separated a letter from its combining mark.
  name = name.normalize('NFC');
  // After NFC, which could otherwise rebuild `<` + U+0338 into ≮ only on a second pass.
  name = name.replace(FORBIDDEN, '_');
  // Windows drops trailing dots and spaces silently; leading spaces hide in listings.
  name = name.replace(/[. ]+$/u, '').replace(/^ +/u, '');
  return name.replace(/^\.+/u, (dots) => '_'.repeat(dots.length));
}

/** Cuts a cleaned name to MAX_SAFE_NAME_BYTES, shortening the stem when the extension is short. */
function fitBytes(name: string): string {
  if (utf8Bytes(name) <= MAX_SAFE_NAME_BYTES) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot) : '';
  if (extension !== '' && utf8Bytes(extension) - 1 <= MAX_KEPT_EXTENSION_BYTES) {
    return trimEnd(cutToBytes(name.slice(0, dot), MAX_SAFE_NAME_BYTES - utf8Bytes(extension))) + extension;
  }
  return trimEnd(cutToBytes(name, MAX_SAFE_NAME_BYTES));
}

/**
 * The longest prefix of whole graphemes within `maxBytes`, so an accent or an emoji is not split. A
 * single grapheme that could never fit (a long ZWJ chain, a letter with hundreds of marks) is cut by
 * code point instead, and a ZWJ left dangling at the cut is dropped.
 */
function cutToBytes(text: string, maxBytes: number): string {
  let kept = '';
  let keptBytes = 0;
  for (const { segment } of graphemes.segment(text)) {
    const segmentBytes = utf8Bytes(segment);
    if (keptBytes + segmentBytes <= maxBytes) {
      kept += segment;
      keptBytes += segmentBytes;
      continue;
    }
    if (segmentBytes > maxBytes) {
      for (const codePoint of segment) {
        const codePointBytes = utf8Bytes(codePoint);
        if (keptBytes + codePointBytes > maxBytes) break;
        kept += codePoint;
        keptBytes += codePointBytes;
      }
    }
    break;
  }
  return kept.replace(STRAY_ZWJ, '');
}

/** A cut may end in dots or spaces, which Windows would drop (or which read oddly before `.ext`). */
function trimEnd(text: string): string {
  return text.replace(/[. ]+$/u, '');
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** lstat, not exists: a dangling symlink is taken too, or writing the file would follow it. */
function isOccupied(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    throw new SalaError('SALA_E_DOWNLOADS_DIR', `Cannot look into the downloads folder: ${(err as Error).message}`, { cause: err });
  }
}

function assertInside(dir: string, path: string): void {
  const inside = relative(dir, path);
  if (inside === '' || isAbsolute(inside) || inside.split(sep).includes('..')) {
    throw new SalaError('SALA_E_DOWNLOADS_DIR', `Refusing to save a file outside the downloads folder ${dir}.`);
  }
}
