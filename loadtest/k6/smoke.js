// Smoke: one whole quiz with a few dozen players; every check must pass.
//   k6 run loadtest/k6/smoke.js            (against make cluster)
//   QUIZGATE_URL=http://host:port k6 run loadtest/k6/smoke.js
import { createQuiz, player, host } from './lib.js';

const PLAYERS = Number(__ENV.PLAYERS || 30);
const QUESTIONS = 3;

export const options = {
  scenarios: {
    host: { executor: 'shared-iterations', vus: 1, iterations: 1, exec: 'hostVu', maxDuration: '60s' },
    players: { executor: 'per-vu-iterations', vus: PLAYERS, iterations: 1, exec: 'playerVu', maxDuration: '60s' },
  },
  thresholds: {
    checks: ['rate==1.0'],
    sequence_gaps: ['count==0'],
    players_finished: [`count==${PLAYERS}`],
    answer_ack_ms: ['p(95)<250'],
    event_delivery_ms: ['p(95)<250'],
  },
};

export function setup() {
  return createQuiz(QUESTIONS, 5000);
}

export function hostVu(q) {
  host(q.code, q.host_token, PLAYERS, 200);
}

export function playerVu(q) {
  player(q.code, `player-${__VU}`, { thinkMinMs: 100, thinkMaxMs: 1500 });
}
