import { SalaError } from '../../errors.js';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, type Aead } from '../aead.js';

const EMPTY = new Uint8Array(0);
/** Noise reserves nonce 2^64-1 for rekey (§5.1); we stop far earlier, at 2^53, where numbers stay exact. */
const MAX_NONCE = Number.MAX_SAFE_INTEGER;
const REKEY_NONCE = 0xffffffffffffffffn;

/** ChaChaPoly nonce (§12.3): 32 bits of zeros, then the 64-bit counter little-endian. */
export function noiseNonce(n: number | bigint): Buffer {
  const nonce = Buffer.alloc(AEAD_NONCE_BYTES);
  nonce.writeBigUInt64LE(BigInt(n), 4);
  return nonce;
}

/**
 * A Noise CipherState (§5.1): a key and a counter nonce. It owns the counter; the AEAD backend only
 * computes. A failed decryption leaves the counter where it was, and the caller closes the channel.
 */
export class CipherState {
  #key: Uint8Array | undefined;
  #nonce = 0;
  #isDestroyed = false;
  readonly #aead: Aead;
  readonly #nonceBuffer = Buffer.alloc(AEAD_NONCE_BYTES);

  constructor(aead: Aead, key?: Uint8Array) {
    this.#aead = aead;
    if (key !== undefined) this.initializeKey(key);
  }

  initializeKey(key: Uint8Array): void {
    if (key.length !== AEAD_KEY_BYTES) throw new Error(`cipher key must be ${AEAD_KEY_BYTES} bytes`);
    this.#key = Uint8Array.from(key);
    this.#nonce = 0;
  }

  get hasKey(): boolean {
    return this.#key !== undefined;
  }

  get nonce(): number {
    return this.#nonce;
  }

  /** For test vectors and resumption only; Noise never moves the counter backwards. */
  setNonce(nonce: number): void {
    this.#nonce = nonce;
  }

  /** ENCRYPT with the next nonce; `headroomBytes` are left free at the start (see Aead.seal). */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array | readonly Uint8Array[], headroomBytes = 0): Buffer {
    this.#checkUsable();
    const parts = plaintext instanceof Uint8Array ? [plaintext] : plaintext;
    if (this.#key === undefined) return Buffer.concat([Buffer.alloc(headroomBytes), ...parts]);
    return this.#aead.seal(this.#key, this.#nonceBytes(this.#takeNonce()), ad, parts, headroomBytes);
  }

  /** ENCRYPT as pieces whose concatenation is what encryptWithAd returns (see Aead.sealParts). */
  encryptWithAdParts(ad: Uint8Array, parts: readonly Uint8Array[], headroomBytes = 0): Buffer[] {
    this.#checkUsable();
    if (this.#key === undefined) return [this.encryptWithAd(ad, parts, headroomBytes)];
    return this.#aead.sealParts(this.#key, this.#nonceBytes(this.#takeNonce()), ad, parts, headroomBytes);
  }

  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Buffer {
    this.#checkUsable();
    if (this.#key === undefined) return Buffer.from(ciphertext);
    this.#checkNonce();
    const out = this.#aead.open(this.#key, this.#nonceBytes(this.#nonce), ad, ciphertext);
    this.#nonce += 1;
    return out;
  }

  /** REKEY (§4.2): k = first 32 bytes of ENCRYPT(k, 2^64-1, ε, zeros). The counter is kept. */
  rekey(): void {
    if (this.#key === undefined) throw new Error('rekey without a key');
    const next = this.#aead.seal(this.#key, noiseNonce(REKEY_NONCE), EMPTY, [new Uint8Array(AEAD_KEY_BYTES)]);
    this.#key.fill(0);
    this.#key = Uint8Array.from(next.subarray(0, AEAD_KEY_BYTES));
    next.fill(0);
  }

  /** Zeroes the key; the state cannot be used afterwards. */
  destroy(): void {
    this.#key?.fill(0);
    this.#key = undefined;
    this.#isDestroyed = true;
  }

  /** A destroyed state must fail, not fall back to Noise's no-key pass-through (plaintext out). */
  #checkUsable(): void {
    if (this.#isDestroyed) throw new SalaError('SALA_E_CHANNEL_CLOSED', 'This channel is closed; nothing more can be sent or read.');
  }

  /**
   * The nonce for counter `n` in a buffer reused for every frame (both backends copy it), instead of
   * a fresh buffer and a BigInt per frame. `n` stays below 2^53 (MAX_NONCE).
   */
  #nonceBytes(n: number): Buffer {
    this.#nonceBuffer.writeUInt32LE(n % 0x1_0000_0000, 4);
    this.#nonceBuffer.writeUInt32LE(Math.floor(n / 0x1_0000_0000), 8);
    return this.#nonceBuffer;
  }

  #takeNonce(): number {
    this.#checkNonce();
    const n = this.#nonce;
    this.#nonce += 1;
    return n;
  }

  #checkNonce(): void {
    if (this.#nonce >= MAX_NONCE) {
      throw new SalaError('SALA_E_CHANNEL_CLOSED', 'This channel has used all its nonces; open a new one.');
    }
  }
}
