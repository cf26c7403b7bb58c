// The reference client against a real node (node --test).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { QuizgateClient, backoffMs, createQuiz, retryMs } from '../client/quizgate.js';
import { WebSocket, next, quiz, startNode, startProxy } from '../testkit/node.mjs';

let node;
before(async () => {
  node = await startNode();
});
after(() => node?.stop());

/** Every broadcast a client processes, in order. */
function record(client) {
  const seqs = [];
  client.addEventListener('broadcast', (e) => seqs.push(e.detail.seq));
  return seqs;
}

test('a host and two players play a quiz to the end', { timeout: 20_000 }, async () => {
  const { code, host_token } = await createQuiz(node.http, quiz(2));
  const host = new QuizgateClient(node.ws, { WebSocket });
  const w = await host.host(code, host_token);
  assert.equal(w.role, 'host');
  const ann = new QuizgateClient(node.ws, { WebSocket });
  const bob = new QuizgateClient(node.ws, { WebSocket });
  const annSeqs = record(ann);
  assert.equal((await ann.join(code, 'ann')).role, 'player');
  await bob.join(code, 'bob');
  assert.ok(ann.session.token, 'the session token is kept');

  for (const index of [0, 1]) {
    const asked = next(ann, 'broadcast', (f) => f.t === 'question' && f.index === index);
    await host.command(index === 0 ? 'start' : 'next');
    const q = await asked;
    assert.ok(q.deadline_ms > ann.serverNow() - 1_000, 'the deadline is in server time');
    const revealed = next(ann, 'broadcast', (f) => f.t === 'reveal' && f.index === index);
    const standing = next(ann, 'standing');
    const r = await ann.answer(index, index % 3);
    assert.equal(r.status, 'accepted');
    assert.ok(r.points > 0);
    assert.equal((await bob.answer(index, 2)).question, index);
    assert.equal((await revealed).reason, 'all_answered');
    assert.ok((await standing).score > 0);
  }
  const ended = next(ann, 'broadcast', (f) => f.t === 'ended');
  await host.command('next');
  const end = await ended;
  assert.equal(end.top[0].nickname, 'ann');
  assert.deepEqual(annSeqs, annSeqs.map((_, i) => i + 1), 'gapless from seq 1');
  await assert.rejects(host.command('next'), (e) => e.code === 'wrong_phase');
  for (const c of [host, ann, bob]) c.close();
});

test('a cut connection is resumed: missed events arrive, an unanswered answer is sent again', { timeout: 20_000 }, async () => {
  const proxy = await startProxy(node.addr);
  const { code, host_token } = await createQuiz(node.http, quiz(2));
  const host = new QuizgateClient(node.ws, { WebSocket });
  await host.host(code, host_token);
  // Ann goes through the proxy, with short backoffs.
  const ann = new QuizgateClient(proxy.ws, { WebSocket, random: () => 0.01 });
  const seqs = record(ann);
  await ann.join(code, 'ann');
  const states = [];
  ann.addEventListener('state', (e) => states.push(e.detail));
  await host.command('start');
  await next(ann, 'broadcast', (f) => f.t === 'question');

  // Cut: ann answers into the void, and the host skips while she is away.
  proxy.cut();
  const answered = ann.answer(0, 0);
  const resumed = next(ann, 'welcome', (w) => w.resumed === true);
  await host.command('skip');
  const reveal = next(ann, 'broadcast', (f) => f.t === 'reveal');
  const w = await resumed;
  assert.equal(w.role, 'player');
  assert.equal((await reveal).reason, 'skipped', 'the missed reveal is replayed');
  const r = await answered;
  assert.ok(['late', 'accepted', 'duplicate'].includes(r.status), r.status);
  assert.ok(states.includes('reconnecting') && states.at(-1) === 'open', states.join(' → '));
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'no gap, no repeat across the cut');
  ann.close();
  host.close();
  proxy.close();
});

test('a host that loses its connection resumes as host', { timeout: 20_000 }, async () => {
  const proxy = await startProxy(node.addr);
  const { code, host_token } = await createQuiz(node.http, quiz(1));
  const host = new QuizgateClient(proxy.ws, { WebSocket, random: () => 0.01 });
  await host.host(code, host_token);
  const ann = new QuizgateClient(node.ws, { WebSocket });
  await ann.join(code, 'ann');
  proxy.cut();
  const back = next(host, 'welcome', (w) => w.role === 'host' && w.resumed !== undefined);
  // A command sent while away is sent again after the resume.
  const ack = await host.command('start');
  assert.equal(ack.command, 'start');
  await back;
  host.close();
  ann.close();
  proxy.close();
});

test('stop codes end the client; a gap makes it resume', { timeout: 20_000 }, async () => {
  // A fake socket: what the client sends, and what the test makes it receive.
  const sockets = [];
  class FakeSocket {
    constructor(url, protocol) {
      this.protocol = protocol;
      this.sent = [];
      this.readyState = 0;
      sockets.push(this);
      queueMicrotask(() => {
        this.readyState = 1;
        this.onopen?.();
      });
    }
    send(text) {
      const f = JSON.parse(text);
      this.sent.push(f);
      if (f.t === 'join' || f.t === 'resume') {
        queueMicrotask(() =>
          this.receive({ t: 'welcome', rid: f.rid, role: 'player', code: 'ABC234', token: 'tok', resumed: f.t === 'resume' ? true : undefined, quiz: { seq: 3 } }),
        );
      }
    }
    receive(frame) {
      this.onmessage?.({ data: JSON.stringify(frame) });
    }
    close(code = 1000) {
      this.readyState = 3;
      queueMicrotask(() => this.onclose?.({ code, reason: '' }));
    }
  }
  const c = new QuizgateClient('ws://x/ws', { WebSocket: FakeSocket, random: () => 0 });
  await c.join('ABC234', 'ann');
  assert.equal(sockets[0].protocol, 'quizgate.v1.json');
  sockets[0].receive({ t: 'question', seq: 4 });
  sockets[0].receive({ t: 'question', seq: 4 }); // a repeat: dropped
  assert.equal(c.lastSeq, 4);
  const resumed = next(c, 'welcome', (w) => w.resumed === true);
  sockets[0].receive({ t: 'reveal', seq: 6 }); // 5 is missing
  await resumed;
  const resume = sockets[1].sent.find((f) => f.t === 'resume');
  assert.deepEqual([resume.token, resume.last_seq], ['tok', 4]);
  const closed = next(c, 'closed');
  sockets[1].close(4409);
  assert.equal((await closed).code, 4409, 'session taken elsewhere: stop');
  assert.equal(sockets.length, 2, 'no reconnect after 4409');
});

test('backoff is full jitter, capped; retries of unavailable are 250 ms to 4 s', { timeout: 20_000 }, () => {
  assert.equal(backoffMs(0, () => 1), 250);
  assert.equal(backoffMs(3, () => 1), 2000);
  assert.equal(backoffMs(30, () => 1), 30_000);
  assert.equal(backoffMs(5, () => 0), 0);
  assert.equal(retryMs(0, () => 0), 125);
  assert.equal(retryMs(10, () => 1), 4000);
});
