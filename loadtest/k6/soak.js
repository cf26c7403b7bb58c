// Soak: quizzes start and finish continuously for SOAK_DURATION (default
// 30m); each VU hosts a small quiz and plays it with PLAYERS_PER_QUIZ players.
// Watch the nodes' RSS (/metrics process_resident_memory_bytes) stay flat.
//   SOAK_DURATION=2h ROOMS=20 k6 run loadtest/k6/soak.js
import { createQuiz, player, host } from './lib.js';

const ROOMS = Number(__ENV.ROOMS || 10);
const PER_QUIZ = Number(__ENV.PLAYERS_PER_QUIZ || 10);

export const options = {
  scenarios: {
    rooms: { executor: 'constant-vus', vus: ROOMS, duration: __ENV.SOAK_DURATION || '30m', exec: 'room' },
  },
  thresholds: {
    checks: ['rate>0.999'],
    sequence_gaps: ['count==0'],
    answer_ack_ms: ['p(99)<250'],
    event_delivery_ms: ['p(99)<250'],
  },
};

export function room() {
  const q = createQuiz(5, 5000);
  host(q.code, q.host_token, PER_QUIZ, 500);
  for (let i = 0; i < PER_QUIZ; i++) {
    player(q.code, `p${i}`, { thinkMinMs: 200, thinkMaxMs: 4000 });
  }
}
