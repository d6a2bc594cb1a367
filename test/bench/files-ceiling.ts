/**
 * `node dist/test/bench/files-ceiling.js`: the CPU floor of a secure file transfer on this machine,
 * per GiB, each piece of work alone in one process (docs/performance.md §8): ChaCha20-Poly1305 seal
 * and open of 64 KiB frames through node:crypto (as the channel does it: a cipher object per frame),
 * SHA-256 over 64 KiB and 1 MiB buffers, and one extra 64 KiB copy for scale. The raw TCP file copy's
 * CPU per side comes from `npm run bench:files` (its raw rows). Together they bound how close to the
 * raw copy an encrypted, verified transfer can get when sender and receiver share the cores.
 * Environment: SALA_BENCH_CEILING_BYTES (default 1G), SALA_BENCH_CEILING_REPEATS (default 3).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { parseByteCount } from './config.js';

const GIB = 1024 ** 3;
const FRAME_BYTES = 64 * 1024;

interface Sample {
  cpuMs: number;
  wallMs: number;
}

/** CPU (user+system) and wall time of `work`. */
function measure(work: () => void): Sample {
  const cpu = process.cpuUsage();
  const startedAt = performance.now();
  work();
  const used = process.cpuUsage(cpu);
  return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - startedAt };
}

function sealOpenFrames(totalBytes: number, frame: Buffer, key: Buffer): void {
  const nonce = Buffer.alloc(12);
  for (let done = 0, n = 0; done < totalBytes; done += frame.length, n += 1) {
    nonce.writeUInt32LE(n, 4);
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    const sealed = cipher.update(frame);
    cipher.final();
    const tag = cipher.getAuthTag();
    const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    decipher.setAuthTag(tag);
    decipher.update(sealed);
    decipher.final();
  }
}

function sealFrames(totalBytes: number, frame: Buffer, key: Buffer): void {
  const nonce = Buffer.alloc(12);
  for (let done = 0, n = 0; done < totalBytes; done += frame.length, n += 1) {
    nonce.writeUInt32LE(n, 4);
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    cipher.update(frame);
    cipher.final();
    cipher.getAuthTag();
  }
}

function sha256(totalBytes: number, block: Buffer): void {
  const hash = createHash('sha256');
  for (let done = 0; done < totalBytes; done += block.length) hash.update(block);
  hash.digest();
}

function copyFrames(totalBytes: number, frame: Buffer): void {
  for (let done = 0; done < totalBytes; done += frame.length) Buffer.from(frame);
}

function main(): void {
  const bytes = parseByteCount(process.env['SALA_BENCH_CEILING_BYTES'] ?? '1G', 'SALA_BENCH_CEILING_BYTES');
  const repeats = Number(process.env['SALA_BENCH_CEILING_REPEATS'] ?? '3');
  const key = randomBytes(32);
  const frame = randomBytes(FRAME_BYTES);
  const block = randomBytes(1024 * 1024);
  const cases: [string, () => void][] = [
    ['ChaCha20-Poly1305 seal, 64 KiB frames (node:crypto)', () => sealFrames(bytes, frame, key)],
    ['ChaCha20-Poly1305 seal + open, 64 KiB frames (node:crypto)', () => sealOpenFrames(bytes, frame, key)],
    ['SHA-256, 64 KiB updates', () => sha256(bytes, frame)],
    ['SHA-256, 1 MiB updates', () => sha256(bytes, block)],
    ['one copy of every 64 KiB frame (Buffer.from)', () => copyFrames(bytes, frame)],
  ];
  const rows: string[] = [];
  for (const [label, work] of cases) {
    work(); // warm-up (JIT, OpenSSL's first-use setup)
    const samples = Array.from({ length: repeats }, () => measure(work));
    const cpuPerGiB = samples.map((s) => (s.cpuMs / 1000) * (GIB / bytes)).sort((a, b) => a - b);
    const median = cpuPerGiB[Math.floor(cpuPerGiB.length / 2)] ?? Number.NaN;
    rows.push(`${label.padEnd(60)} ${median.toFixed(2).padStart(6)} CPU-s/GiB  (${(1024 / median).toFixed(0)} MiB/s per core; runs ${cpuPerGiB.map((v) => v.toFixed(2)).join(', ')})`);
  }
  process.stdout.write(`${rows.join('\n')}\n`);
}

main();
