// Shared by the quizgate k6 scripts: quiz creation, a player and a host.
import http from 'k6/http';
import { check } from 'k6';
import { Trend, Counter } from 'k6/metrics';
import { WebSocket } from 'k6/experimental/websockets';

export const BASE = __ENV.QUIZGATE_URL || 'http://127.0.0.1:7000';
// The key deploy/cluster/cluster.sh gives its nodes unless told another.
export const API_KEY = __ENV.QUIZGATE_API_KEY || 'qgk_local_cluster';
export const WS = BASE.replace(/^http/, 'ws') + '/ws';

export const ackLatency = new Trend('answer_ack_ms', true);
export const deliveryLatency = new Trend('event_delivery_ms', true);
export const gaps = new Counter('sequence_gaps');
export const resumes = new Counter('resumes');
export const finished = new Counter('players_finished');

export function quiz(questions, timeLimitMs) {
  const qs = [];
  for (let i = 0; i < questions; i++) {
    qs.push({ text: `Question ${i}?`, choices: ['red', 'green', 'blue', 'yellow'], correct: i % 4, time_limit_ms: timeLimitMs, points: 1000 });
  }
  return { title: 'k6', questions: qs };
}

export function createQuiz(questions, timeLimitMs) {
  const res = http.post(`${BASE}/v1/quizzes`, JSON.stringify(quiz(questions, timeLimitMs)), { headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${API_KEY}` } });
  check(res, { 'quiz created (201)': (r) => r.status === 201 });
  return res.json();
}

// One player: joins (or resumes after a drop), answers every question after a
// think time, and checks what it gets. `opts.dropAfterMs` closes the socket
// once, abruptly, to exercise resume.
export function player(code, nickname, opts) {
  const state = { token: null, lastSeq: 0, answered: {}, sent: {}, ended: false, dropped: false };
  connect(state, code, nickname, opts);
}

function connect(state, code, nickname, opts) {
  const ws = new WebSocket(WS, 'quizgate.v1.json');
  ws.onopen = () => {
    if (state.token) {
      resumes.add(1);
      ws.send(JSON.stringify({ t: 'resume', token: state.token, last_seq: state.lastSeq }));
    } else {
      ws.send(JSON.stringify({ t: 'join', code, nickname }));
    }
    if (opts.dropAfterMs && !state.dropped) {
      setTimeout(() => {
        state.dropped = true;
        ws.close();
      }, opts.dropAfterMs);
    }
  };
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data);
    if (f.seq !== undefined) {
      if (f.seq !== state.lastSeq + 1) {
        gaps.add(1);
      }
      check(f, { 'gapless sequence': (x) => x.seq === state.lastSeq + 1 });
      state.lastSeq = f.seq;
      deliveryLatency.add(Date.now() - f.ts);
    }
    switch (f.t) {
      case 'welcome':
        check(f, { 'welcomed': (w) => w.role === 'player' && (!state.token || w.resumed === true) });
        if (!state.token) {
          state.token = f.token;
          state.lastSeq = f.quiz.seq;
        }
        if (f.quiz.phase === 'question' && f.quiz.question && !state.answered[f.quiz.question.index]) {
          answer(ws, state, f.quiz.question.index, opts);
        }
        break;
      case 'question':
        answer(ws, state, f.index, opts);
        break;
      case 'answer_result':
        ackLatency.add(Date.now() - state.sent[f.question]);
        check(f, { 'answer acknowledged': (r) => r.status === 'accepted' || r.status === 'duplicate' || r.status === 'late' });
        state.answered[f.question] = true;
        break;
      case 'error':
        check(f, { 'no error frames': () => false });
        break;
      case 'ended':
        check(f, { 'final standings': (x) => x.top.length > 0 });
        state.ended = true;
        finished.add(1);
        ws.close();
        break;
    }
  };
  ws.onclose = () => {
    if (!state.ended) {
      // Reconnect with a little jitter and resume where we were.
      setTimeout(() => connect(state, code, nickname, { ...opts, dropAfterMs: 0 }), 50 + Math.random() * 200);
    }
  };
}

function answer(ws, state, index, opts) {
  const think = opts.thinkMinMs + Math.random() * (opts.thinkMaxMs - opts.thinkMinMs);
  setTimeout(() => {
    if (ws.readyState !== 1 || state.answered[index]) return;
    state.sent[index] = Date.now();
    ws.send(JSON.stringify({ t: 'answer', question: index, choice: Math.floor(Math.random() * 4) }));
  }, think);
}

// The host: waits for `players` to join, starts, and moves on after each reveal.
export function host(code, token, players, nextDelayMs) {
  const ws = new WebSocket(WS, 'quizgate.v1.json');
  let started = false;
  ws.onopen = () => ws.send(JSON.stringify({ t: 'host', code, token }));
  ws.onmessage = (e) => {
    const f = JSON.parse(e.data);
    if (f.t === 'welcome') check(f, { 'host welcomed': (w) => w.role === 'host' });
    // Hosts follow the lobby by `progress` (players do not: no lobby broadcasts).
    if (f.t === 'progress' && !started && f.players >= players) {
      started = true;
      ws.send(JSON.stringify({ t: 'start' }));
    }
    if (f.t === 'reveal') setTimeout(() => ws.send(JSON.stringify({ t: 'next' })), nextDelayMs);
    if (f.t === 'ended') ws.close();
  };
}
