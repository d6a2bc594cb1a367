import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeAead, sodiumAead } from '../../../../common/crypto/aead.js';
import { HandshakeState, x25519KeyPairFromPrivate } from '../../../../common/crypto/noise/handshake-state.js';
import type { CipherState } from '../../../../common/crypto/noise/cipher-state.js';
import { initCrypto } from '../../../../common/crypto/sodium.js';

/**
 * The published cacophony vectors, read from the shared folder beside the repository (the copy the
 * whole team checks against) or, failing that, from the repository's own copy.
 */
const here = dirname(fileURLToPath(import.meta.url));
const candidates = [
  join(here, '../../../../../shared/vectors/noise/noise-vectors.json'),
  join(here, '../../../fixtures/noise-vectors.json'),
];

interface Vector {
  protocol_name: string;
  init_prologue: string;
  resp_prologue: string;
  init_static?: string;
  resp_static?: string;
  init_ephemeral: string;
  resp_ephemeral: string;
  init_psks?: string[];
  resp_psks?: string[];
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

function loadVectors(): Vector[] {
  for (const path of candidates) {
    try {
      return (JSON.parse(readFileSync(path, 'utf8')) as { vectors: Vector[] }).vectors;
    } catch {
      // try the next location
    }
  }
  throw new Error(`Noise vectors not found at ${candidates.join(' or ')}`);
}

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const vectors = loadVectors();

function parseName(name: string): { pattern: 'XX' | 'NN'; hash: 'BLAKE2b' | 'SHA256'; pskPosition?: number } {
  const match = /^Noise_(XX|NN)(?:psk(\d))?_25519_ChaChaPoly_(BLAKE2b|SHA256)$/.exec(name);
  if (match === null) throw new Error(`unsupported vector ${name}`);
  const base = { pattern: match[1] as 'XX' | 'NN', hash: match[3] as 'BLAKE2b' | 'SHA256' };
  return match[2] === undefined ? base : { ...base, pskPosition: Number(match[2]) };
}

function makeSide(v: Vector, isInitiator: boolean): HandshakeState {
  const p = isInitiator ? 'init' : 'resp';
  const { pattern, hash, pskPosition } = parseName(v.protocol_name);
  const staticHex = v[`${p}_static`];
  const psks = v[`${p}_psks`];
  return new HandshakeState({
    pattern,
    hash,
    isInitiator,
    prologue: hex(v[`${p}_prologue`]),
    ...(staticHex === undefined ? {} : { staticKeyPair: x25519KeyPairFromPrivate(hex(staticHex)) }),
    ...(pskPosition === undefined || psks?.[0] === undefined ? {} : { psk: { key: hex(psks[0]), position: pskPosition } }),
    ephemeralPrivateKey: hex(v[`${p}_ephemeral`]),
  });
}

describe('Noise known-answer vectors', () => {
  beforeAll(initCrypto);

  it('includes the Noise_XX_25519_ChaChaPoly_BLAKE2b vector Sala is built on', () => {
    expect(vectors.some((v) => v.protocol_name === 'Noise_XX_25519_ChaChaPoly_BLAKE2b')).toBe(true);
  });

  for (const v of vectors) {
    for (const backend of [sodiumAead, nodeAead]) {
      it(`reproduces every message and the handshake hash of ${v.protocol_name} (transport on ${backend.backend})`, () => {
        const initiator = makeSide(v, true);
        const responder = makeSide(v, false);
        let transport: { init: { send: CipherState; receive: CipherState }; resp: { send: CipherState; receive: CipherState } } | undefined;
        v.messages.forEach((m, i) => {
          const initiatorSends = i % 2 === 0;
          if (transport === undefined) {
            const [sender, receiver] = initiatorSends ? [initiator, responder] : [responder, initiator];
            expect(sender.writeMessage(hex(m.payload)).toString('hex')).toBe(m.ciphertext);
            expect(receiver.readMessage(hex(m.ciphertext)).toString('hex')).toBe(m.payload);
            if (initiator.isComplete && responder.isComplete) {
              expect(Buffer.from(initiator.handshakeHash).toString('hex')).toBe(v.handshake_hash);
              expect(Buffer.from(responder.handshakeHash).toString('hex')).toBe(v.handshake_hash);
              transport = { init: initiator.split(backend), resp: responder.split(backend) };
            }
          } else {
            const [send, receive] = initiatorSends
              ? [transport.init.send, transport.resp.receive]
              : [transport.resp.send, transport.init.receive];
            expect(send.encryptWithAd(new Uint8Array(0), hex(m.payload)).toString('hex')).toBe(m.ciphertext);
            expect(receive.decryptWithAd(new Uint8Array(0), hex(m.ciphertext)).toString('hex')).toBe(m.payload);
          }
        });
        expect(transport).toBeDefined();
      });
    }
  }
});
