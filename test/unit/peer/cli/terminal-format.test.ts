import { describe, expect, it } from 'vitest';
import {
  formatByteProgress,
  formatEta,
  formatRate,
  formatProgressLine,
  renderProgressBar,
  sanitizeForTerminal,
  styleTone,
} from '../../../../peer/cli/terminal-format.js';

describe('progress formatting', () => {
  it.each([
    [0, 100, 10, '[----------] 0%'],
    [48, 100, 10, '[####------] 48%'],
    [99.9, 100, 10, '[#########-] 99%'],
    [100, 100, 10, '[##########] 100%'],
    [150, 100, 4, '[####] 100%'],
    [-5, 100, 4, '[----] 0%'],
    [0, 0, 4, '[####] 100%'],
    [Number.NaN, 100, 4, '[----] 0%'],
    [1, 3, 0, '[-] 33%'],
  ])('renderProgressBar(%d, %d, %d) is %s', (bytes, total, width, expected) => {
    expect(renderProgressBar(bytes, total, width)).toBe(expected);
  });

  it.each([
    [512, 1000, '512/1000 B'],
    [1_258_291, 2_621_440, '1.2/2.5 MiB'],
    [512, 2048, '0.5/2.0 KiB'],
    [3 * 1024 ** 3, 4 * 1024 ** 3, '3.0/4.0 GiB'],
    [9, 4, '4/4 B'],
  ])('formatByteProgress(%d, %d) is %s', (bytes, total, expected) => {
    expect(formatByteProgress(bytes, total)).toBe(expected);
  });

  it('fits the line to the width by shortening the label', () => {
    const line = formatProgressLine('a-very-long-file-name-that-does-not-fit.pdf', 50, 100, 40);
    expect(line).toBe('[#####-----] 50% a-very-long-f… 50/100 B');
    expect(line.length).toBeLessThanOrEqual(40);
  });

  it('uses a wider bar on wide screens', () => {
    expect(formatProgressLine('f', 1, 2, 80)).toBe('[##########----------] 50% f 1/2 B');
  });

  it('sanitises the label', () => {
    expect(formatProgressLine('a\u001b[2Jb\nc', 1, 2, 80)).toContain('a\u241b[2Jb\u2424c');
  });
});

describe('sanitizeForTerminal', () => {
  it('shows control characters as symbols and keeps newlines and tabs', () => {
    expect(sanitizeForTerminal('a\u001bb\u0000c\u007fd\u009be\nf\tg')).toBe('a\u241bb\u2400c\u2421d\ufffde\nf\tg');
  });

  it('replaces newlines and tabs too in single-line mode', () => {
    expect(sanitizeForTerminal('a\nb\tc', { isSingleLine: true })).toBe('a\u2424b c');
  });

  it('leaves ordinary text, accents and emoji alone', () => {
    expect(sanitizeForTerminal('olá 😀 — ok')).toBe('olá 😀 — ok');
  });
});

describe('styleTone', () => {
  it('wraps text in the colour of its tone', () => {
    expect(styleTone('failed', 'error')).toBe('\u001b[31mfailed\u001b[39m');
    expect(styleTone('dim', 'muted')).toBe('\u001b[2mdim\u001b[22m');
  });

  it('leaves plain and empty text alone', () => {
    expect(styleTone('hello', 'plain')).toBe('hello');
    expect(styleTone('', 'error')).toBe('');
  });
});

describe('formatRate / formatEta', () => {
  it('shows a rate in binary units and an ETA as m:ss or h:mm:ss', () => {
    expect(formatRate(512)).toBe('512 B/s');
    expect(formatRate(12.34 * 1024 * 1024)).toBe('12 MiB/s');
    expect(formatRate(1.5 * 1024 * 1024)).toBe('1.5 MiB/s');
    expect(formatRate(0)).toBe('–');
    expect(formatEta(42)).toBe('0:42');
    expect(formatEta(61.2)).toBe('1:02');
    expect(formatEta(3 * 3600 + 5)).toBe('3:00:05');
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe('–');
  });
});
