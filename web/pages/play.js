// The player page: join with a code and a nickname, answer, follow the score.
import { QuizgateClient } from '/assets/quizgate.js';

const $ = (id) => document.getElementById(id);
const SECTIONS = ['join', 'lobby', 'question', 'reveal', 'ended', 'gone'];
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

let client = null;
let me = null; // {player_id, nickname}
let current = null; // the open question
let answered = null; // {index, choice}
let tick = null;

function show(id) {
  for (const s of SECTIONS) $(s).hidden = s !== id;
  const focus = $(id).querySelector('h1');
  if (focus) {
    focus.tabIndex = -1;
    focus.focus({ preventScroll: true });
  }
}

function text(el, value) {
  el.textContent = value;
}

function renderTop(list, top) {
  list.replaceChildren(
    ...top.map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.rank}. ${p.nickname} — ${p.score}`;
      if (me && p.player_id === me.player_id) li.className = 'me';
      return li;
    }),
  );
}

function renderQuestion(q, you) {
  current = q;
  answered = you && you.answer ? { index: q.index, choice: you.answer.choice } : null;
  text($('q-number'), `Question ${q.index + 1} of ${q.count}`);
  text($('q-text'), q.text);
  $('q-choices').replaceChildren(
    ...q.choices.map((c, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `choice c${i}`;
      b.textContent = c;
      b.disabled = answered !== null;
      if (answered && answered.choice === i) b.classList.add('picked');
      b.addEventListener('click', () => answer(q.index, i));
      return b;
    }),
  );
  text($('q-status'), answered ? 'Answer sent. Waiting for the others…' : '');
  clearInterval(tick);
  const countdown = () => {
    const left = Math.max(0, Math.ceil((q.deadline_ms - client.serverNow()) / 1000));
    text($('q-countdown'), `${left} s`);
    if (left === 0) clearInterval(tick);
  };
  countdown();
  tick = setInterval(countdown, 250);
  show('question');
}

async function answer(index, choice) {
  if (answered) return;
  answered = { index, choice };
  for (const [i, b] of [...$('q-choices').children].entries()) {
    b.disabled = true;
    if (i === choice) b.classList.add('picked');
  }
  text($('q-status'), 'Answer sent…');
  try {
    const r = await client.answer(index, choice);
    if (r.status === 'late') text($('q-status'), 'Too late for this one.');
    else text($('q-status'), 'Answer in. Waiting for the others…');
    if (r.total !== undefined) setScore(r.total);
  } catch (e) {
    text($('q-status'), `Not sent: ${e.message}`);
  }
}

function setScore(score, rank, players) {
  $('score-bar').hidden = false;
  text($('score'), `${score} points`);
  if (rank) text($('rank'), `· rank ${rank} of ${players}`);
}

function onWelcome(w) {
  me = { player_id: w.player_id, nickname: w.quiz.you?.nickname ?? me?.nickname };
  sessionStorage.setItem('quizgate.session', JSON.stringify({ token: w.token ?? client.session.token, code: w.code }));
  text($('me'), me.nickname ?? '');
  text($('lobby-title'), w.title ? `You're in: ${w.title}` : "You're in!");
  if (w.quiz.you) setScore(w.quiz.you.score, w.quiz.you.rank, w.quiz.players);
  const q = w.quiz;
  if (q.phase === 'lobby') show('lobby');
  else if (q.phase === 'question') renderQuestion(q.question, q.you);
  else if (q.phase === 'reveal') {
    text($('reveal-verdict'), 'Between questions');
    text($('reveal-detail'), '');
    renderTop($('reveal-top'), q.top);
    show('reveal');
  } else if (q.phase === 'ended') onEnded(q.top);
}

function onEnded(top) {
  clearInterval(tick);
  renderTop($('podium'), top.slice(0, 3));
  show('ended');
  sessionStorage.removeItem('quizgate.session');
}

function onBroadcast(f) {
  switch (f.t) {
    case 'question':
      renderQuestion(f, null);
      break;
    case 'reveal': {
      clearInterval(tick);
      text($('q-countdown'), 'closed');
      const mine = answered && answered.index === f.index ? answered.choice : null;
      text(
        $('reveal-verdict'),
        mine === null ? 'No answer' : mine === f.correct ? 'Correct!' : 'Not this time',
      );
      text($('reveal-detail'), `The answer was: ${current?.choices?.[f.correct] ?? f.correct}`);
      $('reveal-top').replaceChildren();
      show('reveal');
      break;
    }
    case 'leaderboard':
      renderTop($('reveal-top'), f.top);
      break;
    case 'ended':
      onEnded(f.top);
      break;
    case 'removed':
      break;
    default:
      break;
  }
}

function start(c) {
  client = c;
  client.addEventListener('welcome', (e) => onWelcome(e.detail));
  client.addEventListener('broadcast', (e) => onBroadcast(e.detail));
  client.addEventListener('standing', (e) => {
    const s = e.detail;
    setScore(s.score, s.rank, s.players);
    text($('final'), `You finished with ${s.score} points, rank ${s.rank} of ${s.players}.`);
  });
  client.addEventListener('state', (e) => {
    $('banner').hidden = e.detail !== 'reconnecting';
  });
  client.addEventListener('closed', (e) => {
    if ($('ended').hidden === false) return;
    const why = { 4403: 'The host removed you from this quiz.', 4409: 'You joined from another tab or device.', 4004: 'The quiz has expired.' };
    text($('gone-title'), 'Disconnected');
    text($('gone-detail'), why[e.detail.code] ?? `The connection ended (${e.detail.reason || e.detail.code}).`);
    sessionStorage.removeItem('quizgate.session');
    show('gone');
  });
}

$('join-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const code = $('code').value.trim().toUpperCase();
  const nickname = $('nickname').value.trim();
  $('join-button').disabled = true;
  text($('join-error'), '');
  const c = new QuizgateClient(wsUrl);
  me = { nickname };
  start(c);
  try {
    await c.join(code, nickname);
  } catch (err) {
    const messages = { quiz_not_found: 'No quiz with that code.', nickname_taken: 'That nickname is taken: pick another.', quiz_locked: 'The host has closed this quiz to new players.', quiz_ended: 'That quiz has ended.' };
    text($('join-error'), messages[err.code] ?? err.message);
    c.close();
    $('join-button').disabled = false;
  }
});

// A code in the address (from the host's QR code): /#K7MQ2X
const fromHash = location.hash.slice(1).toUpperCase();
if (/^[2-9A-HJKMNP-TW-Z]{6}$/.test(fromHash)) $('code').value = fromHash;

// A reload resumes the seat this tab had.
const saved = JSON.parse(sessionStorage.getItem('quizgate.session') ?? 'null');
if (saved?.token) {
  const c = new QuizgateClient(wsUrl);
  start(c);
  c.resume(saved.token, 0).catch(() => {
    sessionStorage.removeItem('quizgate.session');
    show('join');
  });
} else {
  show('join');
  $('code').value ? $('nickname').focus() : $('code').focus();
}
