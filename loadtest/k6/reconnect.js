// Reconnect storm: every player drops its connection once, abruptly, at a
// random moment mid-quiz, reconnects and resumes. Nothing may be missed.
//   PLAYERS=500 k6 run loadtest/k6/reconnect.js
import { createQuiz, player, host } from './lib.js';

const PLAYERS = Number(__ENV.PLAYERS || 300);
const QUESTIONS = 5;

export const options = {
  scenarios: {
    host: { executor: 'shared-iterations', vus: 1, iterations: 1, exec: 'hostVu', maxDuration: '5m' },
    players: { executor: 'per-vu-iterations', vus: PLAYERS, iterations: 1, exec: 'playerVu', maxDuration: '5m' },
  },
  thresholds: {
    checks: ['rate==1.0'],
    sequence_gaps: ['count==0'],
    players_finished: [`count==${PLAYERS}`],
    resumes: [`count>=${PLAYERS}`],
    event_delivery_ms: ['p(99)<1000'],
  },
};

export function setup() {
  return createQuiz(QUESTIONS, 4000);
}

export function hostVu(q) {
  host(q.code, q.host_token, PLAYERS, 500);
}

export function playerVu(q) {
  // Everyone drops within the same two seconds: a storm, not a drizzle.
  player(q.code, `player-${__VU}`, { thinkMinMs: 200, thinkMaxMs: 2500, dropAfterMs: 3000 + Math.random() * 2000 });
}
