import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, hybridAead, nodeAead, sodiumAead, type Aead } from '../../../../common/crypto/aead.js';
import { CipherState, noiseNonce } from '../../../../common/crypto/noise/cipher-state.js';
import { initCrypto } from '../../../../common/crypto/sodium.js';

import { catchSalaError } from '../../../helpers/errors.js';


const BACKENDS: readonly Aead[] = [nodeAead, sodiumAead];
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// RFC 8439 §2.8.2, the AEAD_CHACHA20_POLY1305 test vector.
const RFC = {
  key: hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f'),
  nonce: hex('070000004041424344454647'),
  ad: hex('50515253c0c1c2c3c4c5c6c7'),
  plaintext: Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  ),
  ciphertext: hex(
    'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116',
  ),
  tag: hex('1ae10b594f09e26a7e902ecbd0600691'),
};

const keyArb = fc.uint8Array({ minLength: AEAD_KEY_BYTES, maxLength: AEAD_KEY_BYTES });
const nonceArb = fc.uint8Array({ minLength: AEAD_NONCE_BYTES, maxLength: AEAD_NONCE_BYTES });
const partsArb = fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 5 });

function flipBit(bytes: Uint8Array, bit: number): Buffer {
  const out = Buffer.from(bytes);
  out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7));
  return out;
}

describe('Aead backends', () => {
  beforeAll(initCrypto);

  for (const aead of BACKENDS) {
    it(`${aead.backend} reproduces the RFC 8439 §2.8.2 test vector`, () => {
      const sealed = aead.seal(RFC.key, RFC.nonce, RFC.ad, [RFC.plaintext]);
      expect(sealed.toString('hex')).toBe(Buffer.concat([RFC.ciphertext, RFC.tag]).toString('hex'));
      expect(aead.open(RFC.key, RFC.nonce, RFC.ad, sealed).equals(RFC.plaintext)).toBe(true);
    });
  }

  it('node and libsodium produce byte-identical ciphertexts for random keys, nonces, ad and plaintexts', () => {
    fc.assert(
      fc.property(keyArb, nonceArb, fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 600 }), (key, nonce, ad, plaintext) => {
        const fromNode = nodeAead.seal(key, nonce, ad, [plaintext]);
        const fromSodium = sodiumAead.seal(key, nonce, ad, [plaintext]);
        expect(fromNode.length).toBe(plaintext.length + AEAD_TAG_BYTES);
        expect(fromNode.toString('hex')).toBe(fromSodium.toString('hex'));
      }),
      { numRuns: 200 },
    );
  });

  it('node and libsodium agree on multi-part plaintexts with headroom', () => {
    fc.assert(
      fc.property(keyArb, nonceArb, fc.uint8Array({ maxLength: 32 }), partsArb, fc.nat({ max: 16 }), (key, nonce, ad, parts, headroomBytes) => {
        const whole = Buffer.concat(parts);
        const reference = nodeAead.seal(key, nonce, ad, [whole]);
        for (const aead of BACKENDS) {
          const sealed = aead.seal(key, nonce, ad, parts, headroomBytes);
          expect(sealed.length).toBe(headroomBytes + whole.length + AEAD_TAG_BYTES);
          expect(sealed.subarray(headroomBytes).toString('hex')).toBe(reference.toString('hex'));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('each backend opens what the other sealed', () => {
    fc.assert(
      fc.property(keyArb, nonceArb, fc.uint8Array({ maxLength: 32 }), partsArb, (key, nonce, ad, parts) => {
        const whole = Buffer.concat(parts);
        expect(sodiumAead.open(key, nonce, ad, nodeAead.seal(key, nonce, ad, parts)).equals(whole)).toBe(true);
        expect(nodeAead.open(key, nonce, ad, sodiumAead.seal(key, nonce, ad, parts)).equals(whole)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  for (const aead of BACKENDS) {
    it(`${aead.backend} seals and opens an empty plaintext as a bare tag`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const sealed = aead.seal(key, nonce, Buffer.alloc(0), [Buffer.alloc(0)]);
      expect(sealed.length).toBe(AEAD_TAG_BYTES);
      expect(aead.open(key, nonce, Buffer.alloc(0), sealed).length).toBe(0);
    });

    it(`${aead.backend} seals an empty parts list like an empty plaintext`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      expect(aead.seal(key, nonce, Buffer.alloc(0), []).equals(aead.seal(key, nonce, Buffer.alloc(0), [Buffer.alloc(0)]))).toBe(true);
    });

    for (const keptTagBytes of [4, 15]) {
      it(`${aead.backend} rejects a ciphertext whose tag is truncated to ${keptTagBytes} bytes with SALA_E_CHANNEL_DECRYPT_FAILED`, () => {
        const key = randomBytes(32);
        const nonce = randomBytes(12);
        const ad = Buffer.from('ad');
        const sealed = aead.seal(key, nonce, ad, [Buffer.from('a message longer than a tag')]);
        const truncated = sealed.subarray(0, sealed.length - (AEAD_TAG_BYTES - keptTagBytes));
        catchSalaError(() => aead.open(key, nonce, ad, truncated), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      });

      it(`${aead.backend} rejects an empty-plaintext seal truncated to a ${keptTagBytes}-byte tag with SALA_E_CHANNEL_DECRYPT_FAILED`, () => {
        const key = randomBytes(32);
        const nonce = randomBytes(12);
        const sealed = aead.seal(key, nonce, Buffer.alloc(0), [Buffer.alloc(0)]);
        catchSalaError(() => aead.open(key, nonce, Buffer.alloc(0), sealed.subarray(0, keptTagBytes)), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      });
    }

    it(`${aead.backend} rejects every input shorter than a tag with SALA_E_CHANNEL_DECRYPT_FAILED`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      for (let length = 0; length < AEAD_TAG_BYTES; length += 1) {
        catchSalaError(() => aead.open(key, nonce, Buffer.alloc(0), randomBytes(length)), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      }
    });

    it(`${aead.backend} rejects a flipped bit anywhere in the ciphertext or tag`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const ad = randomBytes(8);
      const sealed = aead.seal(key, nonce, ad, [randomBytes(20)]);
      for (let bit = 0; bit < sealed.length * 8; bit += 1) {
        catchSalaError(() => aead.open(key, nonce, ad, flipBit(sealed, bit)), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      }
    });

    it(`${aead.backend} rejects a flipped bit anywhere in the associated data`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const ad = randomBytes(8);
      const sealed = aead.seal(key, nonce, ad, [randomBytes(20)]);
      for (let bit = 0; bit < ad.length * 8; bit += 1) {
        catchSalaError(() => aead.open(key, nonce, flipBit(ad, bit), sealed), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      }
    });

    it(`${aead.backend} rejects a flipped bit anywhere in the nonce`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const sealed = aead.seal(key, nonce, Buffer.alloc(0), [randomBytes(20)]);
      for (let bit = 0; bit < nonce.length * 8; bit += 1) {
        catchSalaError(() => aead.open(key, flipBit(nonce, bit), Buffer.alloc(0), sealed), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      }
    });

    it(`${aead.backend} rejects a flipped bit anywhere in the key`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const sealed = aead.seal(key, nonce, Buffer.alloc(0), [randomBytes(20)]);
      for (let bit = 0; bit < key.length * 8; bit += 1) {
        catchSalaError(() => aead.open(flipBit(key, bit), nonce, Buffer.alloc(0), sealed), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      }
    });

    it(`${aead.backend} rejects a ciphertext with extra bytes appended`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const sealed = aead.seal(key, nonce, Buffer.alloc(0), [randomBytes(20)]);
      catchSalaError(() => aead.open(key, nonce, Buffer.alloc(0), Buffer.concat([sealed, Buffer.from([0])])), 'SALA_E_CHANNEL_DECRYPT_FAILED');
    });

    it(`${aead.backend} reports only that authentication failed, not which check`, () => {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const sealed = aead.seal(key, nonce, Buffer.alloc(0), [randomBytes(20)]);
      const short = catchSalaError(() => aead.open(key, nonce, Buffer.alloc(0), sealed.subarray(0, 3)), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      const forged = catchSalaError(() => aead.open(key, nonce, Buffer.alloc(0), flipBit(sealed, 0)), 'SALA_E_CHANNEL_DECRYPT_FAILED');
      expect(short.message).toBe(forged.message);
    });
  }
});

describe('CipherState', () => {
  beforeAll(initCrypto);

  const pair = (aeadA: Aead = nodeAead, aeadB: Aead = sodiumAead): [CipherState, CipherState] => {
    const key = randomBytes(32);
    return [new CipherState(aeadA, key), new CipherState(aeadB, key)];
  };
  const ad = Buffer.from('header');

  it('lays out the nonce as 4 zero bytes then the counter little-endian (Noise §12.3)', () => {
    expect(noiseNonce(0x0102030405n).toString('hex')).toBe('00000000' + '0504030201000000');
    expect(noiseNonce(0xffffffffffffffffn).toString('hex')).toBe('00000000' + 'ffffffffffffffff');
  });

  it('starts at nonce 0 and counts up by one per encryption', () => {
    const [a] = pair();
    expect(a.nonce).toBe(0);
    for (let n = 1; n <= 5; n += 1) {
      a.encryptWithAd(ad, Buffer.from('x'));
      expect(a.nonce).toBe(n);
    }
  });

  it('encrypts frame n with the AEAD under nonce n', () => {
    const key = randomBytes(32);
    const a = new CipherState(sodiumAead, key);
    for (let n = 0; n < 3; n += 1) {
      const sealed = a.encryptWithAd(ad, Buffer.from(`frame ${n}`));
      expect(sealed.equals(nodeAead.seal(key, noiseNonce(n), ad, [Buffer.from(`frame ${n}`)]))).toBe(true);
    }
  });

  it('counts up by one per successful decryption', () => {
    const [a, b] = pair();
    for (let n = 1; n <= 3; n += 1) {
      expect(b.decryptWithAd(ad, a.encryptWithAd(ad, Buffer.from(`m${n}`))).toString()).toBe(`m${n}`);
      expect(b.nonce).toBe(n);
    }
  });

  it('does not advance the nonce when a decryption fails, and still opens the genuine frame next', () => {
    const [a, b] = pair();
    const sealed = a.encryptWithAd(ad, Buffer.from('genuine'));
    catchSalaError(() => b.decryptWithAd(ad, flipBit(sealed, 3)), 'SALA_E_CHANNEL_DECRYPT_FAILED');
    expect(b.nonce).toBe(0);
    expect(b.decryptWithAd(ad, sealed).toString()).toBe('genuine');
    expect(b.nonce).toBe(1);
  });

  it('rejects a replayed frame with SALA_E_CHANNEL_DECRYPT_FAILED', () => {
    const [a, b] = pair();
    const sealed = a.encryptWithAd(ad, Buffer.from('once'));
    b.decryptWithAd(ad, sealed);
    catchSalaError(() => b.decryptWithAd(ad, sealed), 'SALA_E_CHANNEL_DECRYPT_FAILED');
  });

  it('rejects reordered frames with SALA_E_CHANNEL_DECRYPT_FAILED', () => {
    const [a, b] = pair();
    a.encryptWithAd(ad, Buffer.from('first'));
    const second = a.encryptWithAd(ad, Buffer.from('second'));
    catchSalaError(() => b.decryptWithAd(ad, second), 'SALA_E_CHANNEL_DECRYPT_FAILED');
  });

  it('leaves headroom bytes before the ciphertext', () => {
    const [a, b] = pair();
    const sealed = a.encryptWithAd(ad, [Buffer.from('he'), Buffer.from('llo')], 4);
    expect(b.decryptWithAd(ad, sealed.subarray(4)).toString()).toBe('hello');
  });

  it('rekeys both sides identically so frames after the rekey still decrypt', () => {
    const [a, b] = pair(nodeAead, sodiumAead);
    b.decryptWithAd(ad, a.encryptWithAd(ad, Buffer.from('before')));
    a.rekey();
    b.rekey();
    expect(b.decryptWithAd(ad, a.encryptWithAd(ad, Buffer.from('after'))).toString()).toBe('after');
  });

  it('keeps the nonce counter across a rekey', () => {
    const [a] = pair();
    a.encryptWithAd(ad, Buffer.from('x'));
    a.encryptWithAd(ad, Buffer.from('x'));
    a.rekey();
    expect(a.nonce).toBe(2);
  });

  it('derives the new key as the first 32 bytes of ENCRYPT(k, 2^64-1, empty, zeros) (Noise §4.2)', () => {
    const key = randomBytes(32);
    const expectedKey = sodiumAead.seal(key, noiseNonce(0xffffffffffffffffn), new Uint8Array(0), [new Uint8Array(32)]).subarray(0, 32);
    const rekeyed = new CipherState(nodeAead, key);
    rekeyed.rekey();
    const reference = new CipherState(nodeAead, expectedKey);
    expect(rekeyed.encryptWithAd(ad, Buffer.from('probe')).equals(reference.encryptWithAd(ad, Buffer.from('probe')))).toBe(true);
  });

  it('changes the key on rekey', () => {
    const key = randomBytes(32);
    const plain = new CipherState(nodeAead, key);
    const rekeyed = new CipherState(nodeAead, key);
    rekeyed.rekey();
    expect(rekeyed.encryptWithAd(ad, Buffer.from('probe')).equals(plain.encryptWithAd(ad, Buffer.from('probe')))).toBe(false);
  });

  it('cannot decrypt with a state that did not rekey', () => {
    const [a, b] = pair();
    a.rekey();
    catchSalaError(() => b.decryptWithAd(ad, a.encryptWithAd(ad, Buffer.from('after'))), 'SALA_E_CHANNEL_DECRYPT_FAILED');
  });

  it('cannot decrypt frames sealed before the rekey with the rekeyed state', () => {
    const [a, b] = pair();
    const old = a.encryptWithAd(ad, Buffer.from('old'));
    b.rekey();
    catchSalaError(() => b.decryptWithAd(ad, old), 'SALA_E_CHANNEL_DECRYPT_FAILED');
  });

  it('refuses to encrypt once the nonce reaches 2^53-1 with SALA_E_CHANNEL_CLOSED', () => {
    const [a] = pair();
    a.setNonce(Number.MAX_SAFE_INTEGER);
    catchSalaError(() => a.encryptWithAd(ad, Buffer.from('x')), 'SALA_E_CHANNEL_CLOSED');
  });

  it('refuses to decrypt once the nonce reaches 2^53-1 with SALA_E_CHANNEL_CLOSED', () => {
    const [, b] = pair();
    b.setNonce(Number.MAX_SAFE_INTEGER);
    catchSalaError(() => b.decryptWithAd(ad, randomBytes(32)), 'SALA_E_CHANNEL_CLOSED');
  });

  it('passes data through unencrypted before it has a key (Noise §5.1)', () => {
    const empty = new CipherState(nodeAead);
    expect(empty.hasKey).toBe(false);
    expect(empty.encryptWithAd(ad, Buffer.from('clear')).toString()).toBe('clear');
    expect(empty.decryptWithAd(ad, Buffer.from('clear')).toString()).toBe('clear');
  });

  it('drops the key on destroy', () => {
    const [a] = pair();
    a.destroy();
    expect(a.hasKey).toBe(false);
  });

  // A destroyed state must not look like one that never had a key: Noise passes those through in
  // the clear, so encryptWithAd() would return the plaintext unchanged.
  it('refuses to encrypt after destroy instead of returning the plaintext', () => {
    const [a] = pair();
    a.destroy();
    catchSalaError(() => a.encryptWithAd(ad, Buffer.from('secret')), 'SALA_E_CHANNEL_CLOSED');
  });
});

describe('hybridAead', () => {
  it('produces the same bytes as both backends on each side of its size threshold, and opens them', async () => {
    const { hybridAead, NATIVE_AEAD_MIN_BYTES, nodeAead: native, sodiumAead: wasm } = await import('../../../../common/crypto/aead.js');
    const key = Buffer.alloc(32, 7);
    const nonce = Buffer.alloc(12, 9);
    const ad = Buffer.alloc(0);
    for (const size of [0, 1, NATIVE_AEAD_MIN_BYTES - 1, NATIVE_AEAD_MIN_BYTES, NATIVE_AEAD_MIN_BYTES + 1, 70_000]) {
      const plaintext = Buffer.alloc(size, size % 251);
      const sealed = hybridAead.seal(key, nonce, ad, [plaintext]);
      expect(sealed.equals(native.seal(key, nonce, ad, [plaintext]))).toBe(true);
      expect(sealed.equals(wasm.seal(key, nonce, ad, [plaintext]))).toBe(true);
      expect(hybridAead.open(key, nonce, ad, sealed).equals(plaintext)).toBe(true);
    }
  });
});

describe('Aead.sealParts (a frame in pieces, never copied into one buffer)', () => {
  beforeAll(initCrypto);

  const key = randomBytes(AEAD_KEY_BYTES);
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const NAMED: readonly [string, Aead][] = [['node:crypto', nodeAead], ['libsodium', sodiumAead], ['hybrid', hybridAead]];
  const PART_LISTS: readonly (readonly Buffer[])[] = [
    [],
    [Buffer.alloc(0)],
    [Buffer.of(0)],
    [Buffer.of(0), randomBytes(58), randomBytes(64 * 1024)],
    [randomBytes(3), Buffer.alloc(0), randomBytes(5000)],
    [randomBytes(131_055)],
  ];

  for (const [name, aead] of NAMED) {
    it(`${name}: its pieces join to exactly the bytes seal() gives, with and without headroom and AD`, () => {
      for (const parts of PART_LISTS) {
        for (const headroom of [0, 4]) {
          for (const ad of [Buffer.alloc(0), Buffer.from('header')]) {
            const joined = Buffer.concat(aead.sealParts(key, nonce, ad, parts, headroom));
            const whole = aead.seal(key, nonce, ad, parts, headroom);
            expect(joined.subarray(headroom).equals(whole.subarray(headroom))).toBe(true);
            expect(joined.length).toBe(whole.length);
            expect(aead.open(key, nonce, ad, joined.subarray(headroom)).equals(Buffer.concat(parts))).toBe(true);
          }
        }
      }
    });
  }

  it('node:crypto: encrypts a large part into a piece of its own, after the headroom', () => {
    const data = randomBytes(64 * 1024);
    const pieces = nodeAead.sealParts(key, nonce, new Uint8Array(0), [Buffer.of(0), randomBytes(58), data], 4);
    expect(pieces[0]?.length).toBe(4);
    expect(pieces.some((piece) => piece.length === data.length)).toBe(true);
    expect(pieces.at(-1)?.length).toBe(AEAD_TAG_BYTES);
  });

  it('CipherState.encryptWithAdParts gives the bytes of encryptWithAd and uses one nonce per call', () => {
    const stateKey = randomBytes(AEAD_KEY_BYTES);
    const inParts = new CipherState(hybridAead, stateKey);
    const whole = new CipherState(hybridAead, stateKey);
    for (const parts of PART_LISTS) {
      const joined = Buffer.concat(inParts.encryptWithAdParts(new Uint8Array(0), parts, 4));
      expect(joined.subarray(4).equals(whole.encryptWithAd(new Uint8Array(0), parts, 4).subarray(4))).toBe(true);
      expect(inParts.nonce).toBe(whole.nonce);
    }
  });

  it('CipherState lays out nonces past 2^32 as Noise does (the reused nonce buffer)', () => {
    const stateKey = randomBytes(AEAD_KEY_BYTES);
    const state = new CipherState(nodeAead, stateKey);
    for (const n of [0, 1, 0xffff_ffff, 0x1_0000_0000, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER - 1]) {
      state.setNonce(n);
      const sealed = state.encryptWithAd(new Uint8Array(0), Buffer.from('probe'));
      expect(sealed.equals(nodeAead.seal(stateKey, noiseNonce(BigInt(n)), new Uint8Array(0), [Buffer.from('probe')]))).toBe(true);
    }
  });
});
