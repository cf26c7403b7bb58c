// A quiz at scale: one host, many players joining over a ramp, answering
// with realistic think times (1–8 s of a 10 s question).
//   PLAYERS=2000 k6 run loadtest/k6/scale.js
import { createQuiz, player, host } from './lib.js';

const PLAYERS = Number(__ENV.PLAYERS || 1000);
const QUESTIONS = Number(__ENV.QUESTIONS || 10);

export const options = {
  scenarios: {
    host: { executor: 'shared-iterations', vus: 1, iterations: 1, exec: 'hostVu', maxDuration: '10m' },
    players: {
      executor: 'per-vu-iterations', vus: PLAYERS, iterations: 1, exec: 'playerVu', maxDuration: '10m',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    sequence_gaps: ['count==0'],
    players_finished: [`count==${PLAYERS}`],
    answer_ack_ms: ['p(95)<100', 'p(99)<250'],
    event_delivery_ms: ['p(95)<100', 'p(99)<250'],
  },
};

export function setup() {
  return createQuiz(QUESTIONS, 10000);
}

export function hostVu(q) {
  host(q.code, q.host_token, PLAYERS, 2000);
}

export function playerVu(q) {
  player(q.code, `player-${__VU}`, { thinkMinMs: 1000, thinkMaxMs: 8000 });
}
