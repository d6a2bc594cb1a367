import { beforeAll, describe, expect, it } from 'vitest';
import { connectSecure, generateStaticKeyPair, initCrypto } from '../../../../common/crypto/index.js';
import { SalaError } from '../../../../common/errors.js';
import { flipByte, startFrameProxy, type Direction } from '../../../helpers/frame-proxy.js';
import { listenSecure } from '../../../helpers/secure-pair.js';

beforeAll(initCrypto);

/** Wire sizes of the three XX messages with empty payloads: header + e; + e, s, tag; + s, tag. */
const MESSAGES: { index: number; direction: Direction; wireBytes: number; name: string }[] = [
  { index: 0, direction: 'toServer', wireBytes: 4 + 32, name: 'msg 1 (-> e)' },
  { index: 0, direction: 'toClient', wireBytes: 4 + 32 + 48 + 16, name: 'msg 2 (<- e, ee, s, es)' },
  { index: 1, direction: 'toServer', wireBytes: 4 + 48 + 16, name: 'msg 3 (-> s, se)' },
];
const FAILURE_CODES = ['SALA_E_HANDSHAKE_FAILED', 'SALA_E_HANDSHAKE_TIMEOUT'];

describe('handshake tampering (SECURITY.md negative test 1)', () => {
  for (const message of MESSAGES) {
    it(`fails cleanly, on the side that reads it, for every flipped byte of ${message.name}`, async () => {
      const timeouts = { handshakeTimeoutMs: 300 };
      const listener = await listenSecure(timeouts);
      let offset = 0;
      const proxy = await startFrameProxy(listener.port, ({ direction, index, wire }) => {
        if (direction !== message.direction || index !== message.index) return wire;
        expect(wire.length).toBe(message.wireBytes);
        return flipByte(wire, offset);
      });
      for (offset = 0; offset < message.wireBytes; offset++) {
        const initiator = connectSecure({
          host: '127.0.0.1',
          port: proxy.port,
          purpose: 'test',
          staticKeyPair: generateStaticKeyPair(),
          ...timeouts,
        }).then(
          (channel) => {
            // Only after msg 3 can the initiator believe it succeeded; the responder then hangs up.
            channel.on('error', () => undefined);
            channel.destroy();
            return 'completed' as const;
          },
          (err: unknown) => err,
        );
        const responder = await listener.nextResult();
        expect(responder.status, `responder accepted a handshake with byte ${offset} flipped`).toBe('rejected');
        const responderErr = (responder as PromiseRejectedResult).reason as SalaError;
        expect(responderErr).toBeInstanceOf(SalaError);
        expect(FAILURE_CODES).toContain(responderErr.code);
        const initiatorOutcome = await initiator;
        if (message.name.startsWith('msg 3')) continue;
        expect(initiatorOutcome, `initiator accepted a handshake with byte ${offset} of ${message.name} flipped`).toBeInstanceOf(SalaError);
        expect(FAILURE_CODES).toContain((initiatorOutcome as SalaError).code);
      }
    });
  }
});
