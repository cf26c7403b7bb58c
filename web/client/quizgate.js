// The reference quizgate client: plain ES module, no dependency, for
// browsers and Node (18+; where Node has no global WebSocket, pass one, e.g.
// the `ws` package's, as `options.WebSocket`).
//
// It speaks docs/protocol.md's JSON encoding (`quizgate.v1.json`): every
// browser reads text frames without a library, a quiz's frames are small,
// and one encoding keeps the client's behaviour easy to check. What it does
// for its user, as docs/protocol.md's "Reconnecting" asks of a client
// library:
//
// - joins, hosts, answers and sends host commands, each a promise of its reply;
// - follows `seq`: drops a repeated broadcast, and on a gap reconnects and
//   resumes from the last one it processed;
// - on a lost connection, reconnects by the close code (at once after 1001
//   and 4100, with exponential backoff and full jitter otherwise, never after
//   the codes that say stop) and resumes with its token and last `seq`
//   (players and hosts alike);
// - sends again the requests that had no reply when the connection went
//   (answers are idempotent; a host command already done gets wrong_phase);
// - retries a request refused as `unavailable` after 250 ms doubling to 4 s;
// - measures the clock offset to the server with ping/pong, so that
//   countdowns follow the server's `deadline_ms`.
//
// Events (an EventTarget; each event's `detail` is the frame or value):
//   welcome, broadcast (question, reveal, leaderboard, ended, removed,
//   locked), progress, standing, state ("connecting" | "open" |
//   "reconnecting" | "closed"), closed ({code, reason}: the client stopped).

export const SUBPROTOCOL = 'quizgate.v1.json';

/** Close codes after which a client must not reconnect (docs/protocol.md). */
const STOP = new Set([1000, 1002, 1003, 1007, 1009, 4004, 4403, 4408, 4409]);
/** Close codes after which it reconnects at once (a short jitter only). */
const AT_ONCE = new Set([1001, 4100]);
/** A client-chosen close code: the client closes to resume after a gap. */
const GAP = 4000;

/** An event of the client, its frame or value in `detail` (as a CustomEvent's). */
export class QuizgateEvent extends Event {
  constructor(type, detail) {
    super(type);
    this.detail = detail;
  }
}

/** A failed request: the server's `error` frame (`code`, `message`). */
export class QuizgateError extends Error {
  constructor(frame) {
    super(`${frame.code}: ${frame.message}`);
    this.code = frame.code;
    this.frame = frame;
  }
}

/** Exponential backoff with full jitter: random(0, min(30 s, 250 ms × 2^n)). */
export function backoffMs(attempt, random = Math.random) {
  return random() * Math.min(30_000, 250 * 2 ** Math.min(attempt, 20));
}

/** The wait before retrying `unavailable`: 250 ms doubling to 4 s, between half and all of it. */
export function retryMs(attempt, random = Math.random) {
  const cap = Math.min(4_000, 250 * 2 ** Math.min(attempt, 20));
  return cap / 2 + random() * (cap / 2);
}

export class QuizgateClient extends EventTarget {
  /**
   * @param {string} url  the node's (or balancer's) `ws://…/ws` or `wss://…/ws`
   * @param {object} [options]
   * @param {typeof WebSocket} [options.WebSocket]  a WebSocket class (default: the global one)
   * @param {() => number} [options.random]  for backoff jitter
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.random = options.random ?? Math.random;
    /** The seat to take again after a reconnect: {kind: 'player', token} or {kind: 'host', code, token}. */
    this.session = null;
    /** The `seq` of the last broadcast processed (or of the snapshot). */
    this.lastSeq = 0;
    /** Server time − local time, in ms (from ping/pong). */
    this.clockOffsetMs = 0;
    this.state = 'closed';
    this.ws = null;
    this.nextRid = 1;
    /** rid → {frame, resolve, reject, retries}: requests without a reply yet. */
    this.pending = new Map();
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
  }

  /** The server's time now, by the measured offset. */
  serverNow() {
    return Date.now() + this.clockOffsetMs;
  }

  /** Joins a quiz as a player; resolves with the `welcome`. */
  async join(code, nickname) {
    const welcome = await this.hello({ t: 'join', code, nickname });
    this.session = { kind: 'player', token: welcome.token, code: welcome.code };
    return welcome;
  }

  /** Takes up a seat again with a player's token (after a page reload, say). */
  async resume(token, lastSeq = 0) {
    this.lastSeq = lastSeq;
    this.session = { kind: 'player', token };
    return this.hello({ t: 'resume', token, last_seq: lastSeq });
  }

  /** Hosts a quiz with its host token; resolves with the `welcome`. */
  async host(code, token, lastSeq) {
    const frame = { t: 'host', code, token };
    if (lastSeq !== undefined) {
      frame.last_seq = lastSeq;
      this.lastSeq = lastSeq;
    }
    const welcome = await this.hello(frame);
    this.session = { kind: 'host', code, token };
    return welcome;
  }

  /** Answers question `question` with choice `choice`; resolves with the `answer_result`. */
  answer(question, choice) {
    return this.request({ t: 'answer', question, choice });
  }

  /** A host command: start, next, skip, end, lock, unlock; resolves with the `ack`. */
  command(t) {
    return this.request({ t });
  }

  /** Removes a player (host). */
  kick(playerId) {
    return this.request({ t: 'kick', player_id: playerId });
  }

  /** Stops for good: no reconnect. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const p of this.pending.values()) p.reject(new Error('client closed'));
    this.pending.clear();
    if (this.ws) this.ws.close(1000);
    this.setState('closed');
  }

  // --- internals ---

  /** The first frame of a connection: opens one, sends it, waits for the welcome. */
  async hello(frame) {
    if (this.ws) throw new Error('this client already has a seat: use a new one');
    this.stopped = false;
    await this.open();
    return this.request(frame);
  }

  open() {
    return new Promise((resolve, reject) => {
      this.setState(this.session ? 'reconnecting' : 'connecting');
      let ws;
      try {
        ws = new this.WebSocket(this.url, SUBPROTOCOL);
      } catch (e) {
        reject(e);
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.setState('open');
        resolve();
      };
      ws.onmessage = (m) => this.onFrame(JSON.parse(m.data));
      ws.onclose = (e) => {
        if (this.ws === ws) this.ws = null;
        if (!opened) reject(new Error(`could not connect (close ${e.code})`));
        this.onClose(e.code, e.reason);
      };
      ws.onerror = () => {};
    });
  }

  request(frame) {
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      this.pending.set(rid, { frame, resolve, reject, retries: 0 });
      this.send({ ...frame, rid });
    });
  }

  send(frame) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  onFrame(f) {
    if (f.rid !== undefined && this.pending.has(f.rid)) {
      const p = this.pending.get(f.rid);
      if (f.t === 'error' && (f.code === 'unavailable' || (f.code === 'rate_limited' && isHello(p.frame)))) {
        // Retry the same frame on this connection (docs/protocol.md, step 5).
        const wait = retryMs(p.retries++, this.random);
        setTimeout(() => this.send({ ...p.frame, rid: f.rid }), wait);
        return;
      }
      this.pending.delete(f.rid);
      if (f.t === 'error') p.reject(new QuizgateError(f));
      else {
        if (f.t === 'welcome') this.onWelcome(f);
        p.resolve(f);
      }
      if (f.t !== 'welcome') this.emit(f.t, f);
      return;
    }
    if (f.seq !== undefined) {
      if (f.seq <= this.lastSeq) return; // a repeat: already processed
      if (f.seq > this.lastSeq + 1) {
        // A gap: events were lost. Resume from the last one processed.
        if (this.ws) this.ws.close(GAP, 'gap');
        return;
      }
      this.lastSeq = f.seq;
      this.emit('broadcast', f);
      return;
    }
    if (f.t === 'welcome') this.onWelcome(f);
    this.emit(f.t, f);
  }

  onWelcome(w) {
    this.attempt = 0;
    // After join or host, and after a resume that could not replay (`resumed`
    // false), the snapshot is the state: broadcasts go on from its seq.
    if (w.resumed !== true) this.lastSeq = w.quiz.seq;
    if (w.token) this.session = { kind: 'player', token: w.token, code: w.code };
    this.emit('welcome', w);
    this.measureClock();
    // Requests that had no reply when the last connection went: send again.
    for (const [rid, p] of this.pending) {
      if (!isHello(p.frame)) this.send({ ...p.frame, rid });
    }
  }

  async measureClock() {
    const t0 = Date.now();
    try {
      const pong = await this.request({ t: 'ping' });
      const t1 = Date.now();
      this.clockOffsetMs = pong.ts - (t0 + t1) / 2;
    } catch {
      // Measured again on the next welcome.
    }
  }

  onClose(code, reason) {
    // Hellos in flight die with their connection (the seat is taken again by
    // the resume); other requests wait to be sent again after it.
    for (const [rid, p] of this.pending) {
      if (isHello(p.frame)) {
        this.pending.delete(rid);
        p.reject(new Error(`connection closed (${code})`));
      }
    }
    if (this.stopped) return;
    if (!this.session || STOP.has(code)) {
      this.stopped = true;
      for (const p of this.pending.values()) p.reject(new Error(`connection closed (${code})`));
      this.pending.clear();
      this.setState('closed');
      this.emit('closed', { code, reason });
      return;
    }
    const wait =
      AT_ONCE.has(code) || code === GAP ? this.random() * 500 : backoffMs(this.attempt++, this.random);
    this.setState('reconnecting');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconnect(), wait);
  }

  async reconnect() {
    if (this.stopped || this.ws) return;
    const s = this.session;
    const frame =
      s.kind === 'player'
        ? { t: 'resume', token: s.token, last_seq: this.lastSeq }
        : { t: 'host', code: s.code, token: s.token, last_seq: this.lastSeq };
    try {
      await this.open();
      await this.request(frame);
    } catch (e) {
      if (e instanceof QuizgateError) {
        // The seat is gone for good (removed, quiz expired, token refused).
        this.stopped = true;
        if (this.ws) this.ws.close(1000);
        this.setState('closed');
        this.emit('closed', { code: 1000, reason: e.code });
      }
      // Otherwise the connection failed: its close schedules the next try.
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  emit(type, detail) {
    this.dispatchEvent(new QuizgateEvent(type, detail));
  }
}

function isHello(frame) {
  return frame.t === 'join' || frame.t === 'host' || frame.t === 'resume';
}

/** Creates a quiz (`POST /v1/quizzes`); `apiKey` may be empty on an open node. */
export async function createQuiz(baseUrl, definition, apiKey) {
  const headers = { 'Content-Type': 'application/json' };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const res = await fetch(new URL('/v1/quizzes', baseUrl), {
    method: 'POST',
    headers,
    body: JSON.stringify(definition),
  });
  const body = await res.json().catch(() => ({}));
  if (res.status !== 201) throw new QuizgateError({ code: body.error ?? `http_${res.status}`, message: body.message ?? res.statusText });
  return body;
}
