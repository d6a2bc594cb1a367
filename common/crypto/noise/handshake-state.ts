import { SalaError } from '../../errors.js';
import type { Aead } from '../aead.js';
import { sodium } from '../sodium.js';
import type { CipherState } from './cipher-state.js';
import { BLAKE2B, SHA256, type NoiseHash } from './hash.js';
import { SymmetricState } from './symmetric-state.js';

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

export const DH_LEN = 32;

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';

/** Message patterns (§7.4–7.5) as frozen token tables; only interactive patterns without pre-messages. */
const PATTERNS = Object.freeze({
  NN: Object.freeze([['e'], ['e', 'ee']] as const),
  XX: Object.freeze([['e'], ['e', 'ee', 's', 'es'], ['s', 'se']] as const),
});
export type PatternName = keyof typeof PATTERNS;

/**
 * Which local key meets which remote key for each DH token (§5.3): [initiator, responder], each
 * [local, remote]. `es` is the initiator's ephemeral with the responder's static, seen from either side.
 */
const DH_ROLES = Object.freeze({
  ee: [['e', 'e'], ['e', 'e']],
  ss: [['s', 's'], ['s', 's']],
  es: [['e', 's'], ['s', 'e']],
  se: [['s', 'e'], ['e', 's']],
} as const);

export interface HandshakeConfig {
  pattern: PatternName;
  hash?: 'BLAKE2b' | 'SHA256';
  isInitiator: boolean;
  prologue: Uint8Array;
  staticKeyPair?: KeyPair;
  /** `pskN` modifier (§9): the PSK is mixed in at the end of message N (0 = before message 1's tokens). */
  psk?: { key: Uint8Array; position: number };
  /** Fixed ephemeral key, for known-answer tests only. */
  ephemeralPrivateKey?: Uint8Array;
}

function fail(cause?: unknown): SalaError {
  return new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.', { cause });
}

export function x25519KeyPairFromPrivate(privateKey: Uint8Array): KeyPair {
  return { privateKey: Uint8Array.from(privateKey), publicKey: sodium().crypto_scalarmult_base(privateKey) };
}

export function generateX25519KeyPair(): KeyPair {
  return x25519KeyPairFromPrivate(sodium().randombytes_buf(DH_LEN));
}

/**
 * A Noise HandshakeState (§5.3) driven by a token table. X25519 through libsodium, whose
 * crypto_scalarmult refuses low-order points (an all-zero shared secret), so they fail closed.
 */
export class HandshakeState {
  readonly protocolName: string;
  readonly isInitiator: boolean;
  readonly #symmetric: SymmetricState;
  readonly #messages: readonly (readonly Token[])[];
  readonly #hasPsk: boolean;
  readonly #psk: Uint8Array | undefined;
  #s: KeyPair | undefined;
  #e: KeyPair | undefined;
  #rs: Uint8Array | undefined;
  #re: Uint8Array | undefined;
  readonly #fixedEphemeral: Uint8Array | undefined;
  #index = 0;

  constructor(config: HandshakeConfig) {
    const hash: NoiseHash = config.hash === 'SHA256' ? SHA256 : BLAKE2B;
    const base = PATTERNS[config.pattern];
    const messages = base.map((tokens) => [...tokens] as Token[]);
    let modifier = '';
    if (config.psk !== undefined) {
      const { position } = config.psk;
      if (position === 0) messages[0]?.unshift('psk');
      else messages[position - 1]?.push('psk');
      modifier = `psk${position}`;
    }
    this.protocolName = `Noise_${config.pattern}${modifier}_25519_ChaChaPoly_${hash.name}`;
    this.isInitiator = config.isInitiator;
    this.#messages = messages;
    this.#hasPsk = config.psk !== undefined;
    this.#psk = config.psk?.key;
    this.#s = config.staticKeyPair;
    this.#fixedEphemeral = config.ephemeralPrivateKey;
    this.#symmetric = new SymmetricState(hash, this.protocolName);
    this.#symmetric.mixHash(config.prologue);
  }

  get isComplete(): boolean {
    return this.#index >= this.#messages.length;
  }

  /** Whether the next message is ours to write. */
  get isMyTurn(): boolean {
    return (this.#index % 2 === 0) === this.isInitiator;
  }

  get messageIndex(): number {
    return this.#index;
  }

  get handshakeHash(): Uint8Array {
    return this.#symmetric.handshakeHash;
  }

  /** The other side's static public key, once a message carrying it has been read. */
  get remoteStatic(): Uint8Array | undefined {
    return this.#rs === undefined ? undefined : Uint8Array.from(this.#rs);
  }

  writeMessage(payload: Uint8Array): Buffer {
    const tokens = this.#nextTokens(true);
    const out: Uint8Array[] = [];
    for (const token of tokens) {
      switch (token) {
        case 'e': {
          this.#e = this.#fixedEphemeral !== undefined ? x25519KeyPairFromPrivate(this.#fixedEphemeral) : generateX25519KeyPair();
          out.push(this.#e.publicKey);
          this.#symmetric.mixHash(this.#e.publicKey);
          if (this.#hasPsk) this.#symmetric.mixKey(this.#e.publicKey);
          break;
        }
        case 's': {
          if (this.#s === undefined) throw new Error('this pattern needs a static key pair');
          out.push(this.#symmetric.encryptAndHash(this.#s.publicKey));
          break;
        }
        default:
          this.#mixToken(token);
      }
    }
    out.push(this.#symmetric.encryptAndHash(payload));
    this.#index += 1;
    return Buffer.concat(out);
  }

  readMessage(message: Uint8Array): Buffer {
    const tokens = this.#nextTokens(false);
    try {
      let offset = 0;
      const take = (n: number): Uint8Array => {
        if (offset + n > message.length) throw new Error('handshake message too short');
        const part = message.subarray(offset, offset + n);
        offset += n;
        return part;
      };
      for (const token of tokens) {
        switch (token) {
          case 'e': {
            this.#re = Uint8Array.from(take(DH_LEN));
            this.#symmetric.mixHash(this.#re);
            if (this.#hasPsk) this.#symmetric.mixKey(this.#re);
            break;
          }
          case 's': {
            const bytes = this.#symmetric.hasKey ? DH_LEN + 16 : DH_LEN;
            this.#rs = Uint8Array.from(this.#symmetric.decryptAndHash(take(bytes)));
            break;
          }
          default:
            this.#mixToken(token);
        }
      }
      const payload = this.#symmetric.decryptAndHash(message.subarray(offset));
      this.#index += 1;
      return payload;
    } catch (err) {
      throw fail(err);
    }
  }

  /** Split (§5.2) into [send, receive] CipherStates for this side, zeroing the handshake secrets. */
  split(transportAead: Aead): { send: CipherState; receive: CipherState } {
    if (!this.isComplete) throw new Error('split before the handshake finished');
    const [c1, c2] = this.#symmetric.split(transportAead);
    this.#e?.privateKey.fill(0);
    this.#e = undefined;
    return this.isInitiator ? { send: c1, receive: c2 } : { send: c2, receive: c1 };
  }

  #nextTokens(isWriting: boolean): readonly Token[] {
    const tokens = this.#messages[this.#index];
    if (tokens === undefined) throw fail(new Error('handshake already complete'));
    if (this.isMyTurn !== isWriting) throw fail(new Error('handshake message out of turn'));
    return tokens;
  }

  #mixToken(token: Exclude<Token, 'e' | 's'>): void {
    if (token === 'psk') {
      if (this.#psk === undefined) throw new Error('psk token without a psk');
      this.#symmetric.mixKeyAndHash(this.#psk);
      return;
    }
    const [localKind, remoteKind] = DH_ROLES[token][this.isInitiator ? 0 : 1];
    const local = localKind === 'e' ? this.#e : this.#s;
    const remote = remoteKind === 'e' ? this.#re : this.#rs;
    if (local === undefined || remote === undefined) throw new Error(`token ${token} without its keys`);
    const shared = sodium().crypto_scalarmult(local.privateKey, remote);
    this.#symmetric.mixKey(shared);
    shared.fill(0);
  }
}
