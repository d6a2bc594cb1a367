import { once } from 'node:events';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { generateSigningKeyPair, initCrypto, MAX_CHAT_TEXT_BYTES, type KeyPair } from '../../../../common/index.js';
import { ChatHistory } from '../../../../peer/chat/chat-history.js';
import { ChatService } from '../../../../peer/chat/chat-service.js';
import { LinkManager, type PeerLink } from '../../../../peer/links/link-manager.js';
import { rejectsWithSalaError } from '../../../helpers/errors.js';
import { tempDir } from '../../../helpers/rendezvous.js';
import { credentials, device, NOW, type Device } from '../../../helpers/tickets.js';

beforeAll(initCrypto);

interface Side {
  me: Device;
  links: LinkManager;
  history: ChatHistory;
  chat: ChatService;
  dir: string;
}

async function side(server: KeyPair, me: Device, dir = tempDir()): Promise<Side> {
  const links = await LinkManager.listen({ credentials: credentials(server, me), mySessionId: () => me.sessionId, host: '127.0.0.1' });
  const history = await ChatHistory.open(dir);
  const chat = new ChatService({
    me: me.user,
    history,
    now: () => NOW,
    linkTo: (user) => links.links().find((l) => l.peer.user === user),
  });
  links.on('link.up', (link: PeerLink) => void chat.attach(link));
  onTestFinished(async () => {
    await links.close();
    await history.close();
  });
  return { me, links, history, chat, dir };
}

async function linkUp(a: Side, b: Side): Promise<void> {
  const bSaw = once(b.links, 'link.up');
  await a.links.connect(b.me.user, b.me.sessionId, [{ host: '127.0.0.1', port: b.links.port }]);
  await bSaw;
}

describe('ChatService', () => {
  it('sends over a live link, and the ack marks it delivered on the sender', async () => {
    const server = generateSigningKeyPair();
    const alice = await side(server, device(server, 'alice', { sessionId: 'a-1' }));
    const bob = await side(server, device(server, 'bob', { sessionId: 'b-1' }));
    await linkUp(alice, bob);
    const received = once(bob.chat, 'message');
    const delivered = once(alice.chat, 'delivered');
    const { id } = await alice.chat.send('Bob', 'hello bob');
    const [message] = (await received) as [{ id: string; from: string; text: string }];
    expect(message).toMatchObject({ id, from: 'alice', text: 'hello bob' });
    expect((await delivered)[0]).toEqual({ id, to: 'bob' });
    await vi.waitFor(async () => expect((await alice.chat.history('bob'))[0]?.status).toBe('delivered'));
    expect((await bob.chat.history('alice')).map((r) => [r.id, r.status])).toEqual([[id, 'received']]);
  });

  it('queues messages typed while the other side is away and delivers them once, in order, when a link comes up', async () => {
    const server = generateSigningKeyPair();
    const alice = await side(server, device(server, 'alice', { sessionId: 'a-1' }));
    const bob = await side(server, device(server, 'bob', { sessionId: 'b-1' }));
    const statuses: string[] = [];
    alice.chat.on('sent', (e) => statuses.push(e.status));
    for (const text of ['one', 'two', 'three']) await alice.chat.send('bob', text);
    expect(statuses).toEqual(['queued', 'queued', 'queued']);
    const texts: string[] = [];
    bob.chat.on('message', (m) => texts.push(m.text));
    await linkUp(alice, bob);
    await vi.waitFor(() => expect(texts).toEqual(['one', 'two', 'three']));
    await vi.waitFor(async () => expect((await alice.chat.history('bob')).every((r) => r.status === 'delivered')).toBe(true));
  });

  it('shows a redelivered message once and acknowledges it again', async () => {
    const server = generateSigningKeyPair();
    const alice = await side(server, device(server, 'alice', { sessionId: 'a-1' }));
    const bob = await side(server, device(server, 'bob', { sessionId: 'b-1' }));
    await linkUp(alice, bob);
    const link = alice.links.get('b-1')!;
    const shown: string[] = [];
    bob.chat.on('message', (m) => shown.push(m.id));
    let acks = 0;
    link.messages.on('message', (m) => void (m.type === 'chat.ack' && acks++));
    link.messages.send({ type: 'chat', id: 'same-id', text: 'once', at: NOW });
    link.messages.send({ type: 'chat', id: 'same-id', text: 'once', at: NOW });
    await vi.waitFor(() => expect(acks).toBe(2));
    expect(shown).toEqual(['same-id']);
  });

  it('keeps undelivered messages across a restart of the program and delivers them later', async () => {
    const server = generateSigningKeyPair();
    const aliceDevice = device(server, 'alice', { sessionId: 'a-1' });
    const dir = tempDir();
    const first = await ChatHistory.open(dir);
    const offline = new ChatService({ me: 'alice', history: first, now: () => NOW, linkTo: () => undefined });
    await offline.send('bob', 'written before the restart');
    await first.close();
    const alice = await side(server, aliceDevice, dir);
    const bob = await side(server, device(server, 'bob', { sessionId: 'b-1' }));
    const received = once(bob.chat, 'message');
    await linkUp(alice, bob);
    expect(((await received) as [{ text: string }])[0].text).toBe('written before the restart');
  });

  it('keeps texts with line-separator characters intact across a reopen of the history', async () => {
    const dir = tempDir();
    const history = await ChatHistory.open(dir);
    const chat = new ChatService({ me: 'alice', history, now: () => NOW, linkTo: () => undefined });
    const text = 'a\u2028b\u2029c\u0085d\r\ne';
    await chat.send('bob', text);
    await history.close();
    const reopened = await ChatHistory.open(dir);
    onTestFinished(() => reopened.close());
    expect((await reopened.with('bob'))[0]?.text).toBe(text);
  });

  it('refuses a text over 64 KiB with SALA_E_MESSAGE_TOO_LARGE, and a bad or own name with SALA_E_UNKNOWN_USER', async () => {
    const history = await ChatHistory.open(tempDir());
    onTestFinished(() => history.close());
    const chat = new ChatService({ me: 'alice', history, now: () => NOW, linkTo: () => undefined });
    await rejectsWithSalaError(chat.send('bob', 'x'.repeat(MAX_CHAT_TEXT_BYTES + 1)), 'SALA_E_MESSAGE_TOO_LARGE');
    await rejectsWithSalaError(chat.send('not a name!', 'hi'), 'SALA_E_UNKNOWN_USER');
    await rejectsWithSalaError(chat.send('Alice', 'hi'), 'SALA_E_UNKNOWN_USER');
    expect(await chat.send('bob', 'x'.repeat(MAX_CHAT_TEXT_BYTES))).toHaveProperty('id');
  });
});
