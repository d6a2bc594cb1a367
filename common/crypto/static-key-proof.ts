import { SalaError } from '../errors.js';
import { packMessage, unpackUnknown } from '../wire/msgpack.js';
import { field, parseShape } from '../wire/schema.js';
import { fingerprint } from './fingerprint.js';
import type { Identity } from './key-store.js';
import { signDetached, verifyDetached, SIGNATURE_BYTES } from './signing.js';

/**
 * Binds a Noise static key to a long-term Ed25519 identity (SECURITY.md C2, as libp2p does): the
 * responder's msg-2 payload carries its signing key and a signature over its X25519 static key.
 * The verifier checks the signature against the static key the handshake actually authenticated,
 * then compares the signing key's fingerprint with the one the person confirmed.
 */
const STATIC_KEY_DOMAIN = 'sala/v1/server-static\0';

const PROOF_SHAPE = {
  v: field.uint({ max: 255 }),
  /** The responder's clock (ms since the epoch), so the other side can judge times by it (SECURITY.md H4). */
  t: field.optional(field.uint()),
  spk: field.bytes({ maxBytes: 32, exactBytes: 32 }),
  ssig: field.bytes({ maxBytes: SIGNATURE_BYTES, exactBytes: SIGNATURE_BYTES }),
} as const;

/** Ed25519 is deterministic: the proof's signature is made once per identity, not per handshake. */
const signatures = new WeakMap<Identity, Uint8Array>();

export function proveStaticKey(identity: Identity, options: { timeMs?: number } = {}): Buffer {
  let ssig = signatures.get(identity);
  if (ssig === undefined) {
    ssig = signDetached(identity.signing.privateKey, STATIC_KEY_DOMAIN, identity.dh.publicKey);
    signatures.set(identity, ssig);
  }
  return packMessage({ v: 1, t: options.timeMs, spk: identity.signing.publicKey, ssig });
}

/**
 * Returns the proven signing key and its fingerprint, or throws SALA_E_HANDSHAKE_FAILED (a payload
 * that does not verify says nothing more specific: SECURITY.md forbids telling which check failed).
 */
export function verifyStaticKeyProof(
  payload: Uint8Array,
  remoteStatic: Uint8Array,
): { signingKey: Uint8Array; fingerprint: string; timeMs: number | undefined } {
  try {
    const proof = parseShape(PROOF_SHAPE, unpackUnknown(payload), 'proof');
    if (proof.v !== 1 || !verifyDetached(proof.spk, STATIC_KEY_DOMAIN, remoteStatic, proof.ssig)) {
      throw new Error('static key proof did not verify');
    }
    return { signingKey: proof.spk, fingerprint: fingerprint(proof.spk), timeMs: proof.t };
  } catch (err) {
    throw new SalaError('SALA_E_HANDSHAKE_FAILED', 'The encrypted handshake failed.', { cause: err });
  }
}
