import { sodiumAead, type Aead } from '../aead.js';
import { CipherState } from './cipher-state.js';
import { hkdf, type NoiseHash } from './hash.js';

const EMPTY = new Uint8Array(0);

/** A Noise SymmetricState (§5.2): chaining key, handshake hash and the handshake's CipherState. */
export class SymmetricState {
  readonly hash: NoiseHash;
  #chainingKey: Uint8Array;
  #h: Uint8Array;
  readonly #cipher = new CipherState(sodiumAead);

  constructor(hash: NoiseHash, protocolName: string) {
    this.hash = hash;
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= hash.hashLen) {
      this.#h = new Uint8Array(hash.hashLen);
      this.#h.set(name);
    } else {
      this.#h = hash.hash(name);
    }
    this.#chainingKey = Uint8Array.from(this.#h);
  }

  /** The handshake hash h: after the last message it identifies this exact handshake (§11.2). */
  get handshakeHash(): Uint8Array {
    return Uint8Array.from(this.#h);
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempKey] = hkdf(this.hash, this.#chainingKey, inputKeyMaterial, 2) as [Uint8Array, Uint8Array];
    this.#chainingKey.fill(0);
    this.#chainingKey = ck;
    this.#cipher.initializeKey(tempKey.subarray(0, 32));
    tempKey.fill(0);
  }

  mixHash(data: Uint8Array): void {
    this.#h = this.hash.hash(this.#h, data);
  }

  /** MixKeyAndHash (§5.2), used by the psk token. */
  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [ck, tempH, tempKey] = hkdf(this.hash, this.#chainingKey, inputKeyMaterial, 3) as [
      Uint8Array,
      Uint8Array,
      Uint8Array,
    ];
    this.#chainingKey.fill(0);
    this.#chainingKey = ck;
    this.mixHash(tempH);
    this.#cipher.initializeKey(tempKey.subarray(0, 32));
    tempKey.fill(0);
  }

  encryptAndHash(plaintext: Uint8Array): Buffer {
    const ciphertext = this.#cipher.encryptWithAd(this.#h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Buffer {
    const plaintext = this.#cipher.decryptWithAd(this.#h, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  get hasKey(): boolean {
    return this.#cipher.hasKey;
  }

  /** Split (§5.2): two transport CipherStates, on the given AEAD backend; zeroes the chaining key. */
  split(transportAead: Aead): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.hash, this.#chainingKey, EMPTY, 2) as [Uint8Array, Uint8Array];
    const pair: [CipherState, CipherState] = [
      new CipherState(transportAead, k1.subarray(0, 32)),
      new CipherState(transportAead, k2.subarray(0, 32)),
    ];
    k1.fill(0);
    k2.fill(0);
    this.#chainingKey.fill(0);
    this.#cipher.destroy();
    return pair;
  }
}
