// The host page: create a quiz, show the join code and a QR code, run it.
import { QuizgateClient, createQuiz } from '/assets/quizgate.js';

const $ = (id) => document.getElementById(id);
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const SAVED = 'quizgate.host';

let client = null;
let quiz = null; // {phase, question, count, locked}
let tick = null;

function text(el, value) {
  el.textContent = value;
}

// --- the form ---

function addQuestion(q = { text: '', choices: ['', '', '', ''], correct: 0 }) {
  const n = $('questions').querySelectorAll('.q').length;
  const box = document.createElement('div');
  box.className = 'q';
  const id = (s) => `q${n}-${s}`;
  box.innerHTML = `
    <label for="${id('text')}">Question ${n + 1}</label>
    <input id="${id('text')}" class="q-text" maxlength="300">
    <div class="q-choices"></div>
    <label for="${id('limit')}">Seconds to answer</label>
    <input id="${id('limit')}" class="q-limit" type="number" min="1" max="300" value="20">`;
  box.querySelector('.q-text').value = q.text;
  const choices = box.querySelector('.q-choices');
  q.choices.forEach((c, i) => {
    const row = document.createElement('div');
    row.className = 'q-choice';
    row.innerHTML = `
      <input type="radio" name="${id('correct')}" id="${id(`c${i}`)}" value="${i}" aria-label="choice ${i + 1} is right">
      <input class="q-choice-text" maxlength="120" aria-label="choice ${i + 1}" placeholder="choice ${i + 1}">`;
    row.querySelector('.q-choice-text').value = c;
    row.querySelector('input[type=radio]').checked = i === q.correct;
    choices.append(row);
  });
  $('questions').append(box);
}

function fromForm() {
  const pasted = $('json').value.trim();
  if (pasted) return JSON.parse(pasted);
  const questions = [...$('questions').querySelectorAll('.q')]
    .map((box) => {
      const rows = [...box.querySelectorAll('.q-choice')];
      const choices = rows.map((r) => r.querySelector('.q-choice-text').value.trim());
      const correct = rows.findIndex((r) => r.querySelector('input[type=radio]').checked);
      const kept = choices.map((c, i) => [c, i]).filter(([c]) => c);
      return {
        text: box.querySelector('.q-text').value.trim(),
        choices: kept.map(([c]) => c),
        correct: Math.max(0, kept.findIndex(([, i]) => i === correct)),
        time_limit_ms: Number(box.querySelector('.q-limit').value || 20) * 1000,
      };
    })
    .filter((q) => q.text);
  return { title: $('title').value.trim(), questions };
}

$('add-question').addEventListener('click', () => addQuestion());
$('file').addEventListener('change', async () => {
  const f = $('file').files[0];
  if (f) $('json').value = await f.text();
});
$('api-key').value = localStorage.getItem('quizgate.apiKey') ?? '';

$('create-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  text($('create-error'), '');
  let definition;
  try {
    definition = fromForm();
  } catch (err) {
    text($('create-error'), `The definition is not JSON: ${err.message}`);
    return;
  }
  const key = $('api-key').value.trim();
  if (key) localStorage.setItem('quizgate.apiKey', key);
  $('create-button').disabled = true;
  try {
    const created = await createQuiz(location.origin, definition, key);
    sessionStorage.setItem(SAVED, JSON.stringify(created));
    await run(created.code, created.host_token);
  } catch (err) {
    text($('create-error'), err.frame?.message ?? err.message);
  } finally {
    $('create-button').disabled = false;
  }
});

// --- the console ---

function setPhase(phase) {
  quiz.phase = phase;
  text($('phase'), { lobby: 'lobby', question: 'question open', reveal: 'between questions', ended: 'ended' }[phase]);
  $('start').hidden = phase !== 'lobby';
  $('skip').hidden = phase !== 'question';
  $('next').hidden = phase !== 'reveal';
  $('end').hidden = phase === 'ended';
  $('lock').hidden = phase === 'ended';
  if (phase === 'reveal') {
    text($('next'), quiz.question && quiz.question.index + 1 >= quiz.count ? 'Show the podium' : 'Next question');
  }
}

function setLocked(locked) {
  quiz.locked = locked;
  text($('lock'), locked ? 'Unlock' : 'Lock');
  text($('lock-state'), locked ? 'locked: no new players' : 'open to new players');
}

function showQuestion(q) {
  quiz.question = q;
  $('q-view').hidden = false;
  $('board').hidden = true;
  text($('q-number'), `Question ${q.index + 1} of ${q.count}`);
  text($('q-text'), q.text);
  text($('answered'), `${q.answered ?? 0} answered`);
  $('q-choices').replaceChildren(
    ...q.choices.map((c, i) => {
      const li = document.createElement('li');
      li.className = `c${i}`;
      li.textContent = c;
      return li;
    }),
  );
  clearInterval(tick);
  const countdown = () => {
    const left = Math.max(0, Math.ceil((q.deadline_ms - client.serverNow()) / 1000));
    text($('q-countdown'), `${left} s`);
  };
  countdown();
  tick = setInterval(countdown, 250);
}

function showBoard(title, top, podium = false) {
  $('board').hidden = false;
  text($('board-title'), title);
  $('top').className = podium ? 'podium' : 'top';
  $('top').replaceChildren(
    ...(podium ? top.slice(0, 3) : top).map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.rank}. ${p.nickname} — ${p.score}`;
      if (!podium && quiz.phase !== 'question' && quiz.phase !== 'ended') {
        const kick = document.createElement('button');
        kick.type = 'button';
        kick.className = 'kick secondary';
        kick.textContent = 'Remove';
        kick.setAttribute('aria-label', `Remove ${p.nickname}`);
        kick.addEventListener('click', () => act(() => client.kick(p.player_id)));
        li.append(' ', kick);
      }
      return li;
    }),
  );
}

async function act(f) {
  text($('console-error'), '');
  try {
    await f();
  } catch (err) {
    text($('console-error'), err.message);
  }
}

for (const [id, t] of [['start', 'start'], ['next', 'next'], ['skip', 'skip'], ['end', 'end']]) {
  $(id).addEventListener('click', () => act(() => client.command(t)));
}
$('lock').addEventListener('click', () => act(() => client.command(quiz.locked ? 'unlock' : 'lock')));

async function run(code, token) {
  $('create').hidden = true;
  $('console').hidden = false;
  const joinUrl = `${location.origin}/#${code}`;
  text($('join-url'), location.host);
  text($('join-code'), code);
  $('qr').src = `/qr.svg?text=${encodeURIComponent(joinUrl)}`;
  client = new QuizgateClient(wsUrl);
  client.addEventListener('state', (e) => {
    $('banner').hidden = e.detail !== 'reconnecting';
  });
  client.addEventListener('welcome', (e) => {
    const q = e.detail.quiz;
    quiz = { phase: q.phase, question: q.question ?? null, count: q.question_count, locked: q.locked };
    text($('players'), `${q.players} players`);
    setPhase(q.phase);
    setLocked(q.locked);
    if (q.question && q.phase === 'question') showQuestion({ ...q.question, answered: q.answered });
    else if (q.phase === 'ended') showBoard('Podium', q.top, true);
    else if (q.top.length) showBoard('Leaderboard', q.top);
  });
  client.addEventListener('progress', (e) => {
    const p = e.detail;
    text($('players'), `${p.players} players`);
    if (p.index !== undefined && quiz.question && p.index === quiz.question.index) {
      text($('answered'), `${p.answered} answered`);
    }
  });
  client.addEventListener('broadcast', (e) => {
    const f = e.detail;
    if (f.t === 'question') {
      setPhase('question');
      showQuestion(f);
    } else if (f.t === 'reveal') {
      clearInterval(tick);
      text($('q-countdown'), 'closed');
      setPhase('reveal');
      text($('answered'), `${f.answered} answered`);
      for (const [i, li] of [...$('q-choices').children].entries()) {
        li.classList.toggle('correct', i === f.correct);
        li.dataset.count = `${f.distribution[i]}`;
      }
    } else if (f.t === 'leaderboard') {
      text($('players'), `${f.players} players`);
      showBoard('Leaderboard', f.top);
    } else if (f.t === 'ended') {
      clearInterval(tick);
      setPhase('ended');
      $('q-view').hidden = true;
      showBoard('Podium', f.top, true);
      sessionStorage.removeItem(SAVED);
    } else if (f.t === 'locked') {
      setLocked(f.locked);
    }
  });
  client.addEventListener('closed', (e) => {
    text($('console-error'), `Disconnected (${e.detail.reason || e.detail.code}).`);
  });
  await client.host(code, token);
}

const saved = JSON.parse(sessionStorage.getItem(SAVED) ?? 'null');
if (saved) {
  run(saved.code, saved.host_token).catch(() => {
    sessionStorage.removeItem(SAVED);
    location.reload();
  });
} else {
  addQuestion();
  $('title').focus();
}
