// The pages in a real browser (headless Chromium through playwright-core):
// a host and three players, one on a phone-sized screen, play a quiz to the
// podium; then the same behind HAProxy while the node they are on is killed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { ROOT, startCluster, startNode } from '../testkit/node.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const SHOTS = process.env.QUIZGATE_SCREENSHOTS ?? path.join(ROOT, 'web', 'test-results');
const PHONE = { width: 390, height: 844 };
const WAIT = { timeout: 15_000 };

let browser;
before(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'quizgate-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
  });
});
after(() => browser?.close());

const QUESTIONS = [
  { text: 'Capital of France?', choices: ['Lyon', 'Paris', 'Nice', 'Lille'], correct: 1 },
  { text: 'Largest planet?', choices: ['Mars', 'Venus', 'Jupiter', 'Mercury'], correct: 2 },
  { text: 'H2O is…', choices: ['Water', 'Salt', 'Gold', 'Air'], correct: 0 },
];

/** Fills the host page's form with QUESTIONS and creates the quiz; the join code. */
async function createFromForm(host, base) {
  await host.goto(`${base}/host`);
  await host.fill('#title', 'Browser quiz');
  for (const [i, q] of QUESTIONS.entries()) {
    if (i > 0) await host.click('#add-question');
    const box = host.locator('.q').nth(i);
    await box.locator('.q-text').fill(q.text);
    for (const [j, c] of q.choices.entries()) await box.locator('.q-choice-text').nth(j).fill(c);
    await box.locator('input[type=radio]').nth(q.correct).check();
  }
  await host.click('#create-button');
  await host.locator('#join-code').waitFor(WAIT);
  const code = (await host.textContent('#join-code')).trim();
  assert.match(code, /^[2-9A-HJKMNP-TW-Z]{6}$/);
  return code;
}

async function joinAs(page, base, code, nickname) {
  await page.goto(`${base}/#${code}`);
  assert.equal(await page.inputValue('#code'), code, 'the code from the QR link is filled in');
  await page.fill('#nickname', nickname);
  await page.keyboard.press('Enter'); // keyboard only
  await page.locator('#lobby').waitFor({ state: 'visible', ...WAIT });
}

/** Plays QUESTIONS: players[i] answers with picks[i](question). */
async function play(host, players, picks, between = async () => {}, shoot = false) {
  for (const [qi, q] of QUESTIONS.entries()) {
    await host.click(qi === 0 ? '#start' : '#next');
    for (const [pi, p] of players.entries()) {
      await p.locator('#q-text', { hasText: q.text }).waitFor({ state: 'visible', ...WAIT });
      const countdown = await p.textContent('#q-countdown');
      assert.match(countdown, /^\d+ s$/, 'a countdown from the server deadline');
      if (shoot && qi === 0 && pi === players.length - 1) {
        await p.screenshot({ path: path.join(SHOTS, 'player-phone-question.png') });
      }
      await p.locator('.choice').nth(picks[pi](q)).click();
    }
    for (const [pi, p] of players.entries()) {
      const verdict = picks[pi](q) === q.correct ? 'Correct!' : 'Not this time';
      await p.locator('#reveal-verdict', { hasText: verdict }).waitFor({ state: 'visible', ...WAIT });
    }
    await host.locator('#q-choices li.correct').waitFor(WAIT);
    assert.equal(await host.textContent('#answered'), `${players.length} answered`);
    await host.locator('#top li').first().waitFor(WAIT);
    await between(qi);
  }
  await host.locator('#next', { hasText: 'Show the podium' }).click();
  await host.locator('#board-title', { hasText: 'Podium' }).waitFor(WAIT);
}

test('a host and three players play a quiz to the podium', { timeout: 90_000 }, async () => {
  const node = await startNode();
  try {
    const host = await browser.newPage();
    const code = await createFromForm(host, node.http);
    const qr = await host.locator('#qr').evaluate((img) => img.complete && img.naturalWidth > 0);
    assert.ok(qr, 'the QR code image loads');

    const names = ['ann', 'bob', 'cy'];
    const players = [];
    for (const name of names) {
      const p = await browser.newPage();
      if (name === 'cy') await p.setViewportSize(PHONE);
      await joinAs(p, node.http, code, name);
      players.push(p);
    }
    await host.locator('#players', { hasText: '3 players' }).waitFor(WAIT);
    await host.screenshot({ path: path.join(SHOTS, 'host-lobby.png') });

    // ann always right, bob right but slower, cy always wrong.
    const picks = [(q) => q.correct, (q) => q.correct, (q) => (q.correct + 1) % 4];
    await play(host, players, picks, async (qi) => {
      if (qi === 0) {
        await host.screenshot({ path: path.join(SHOTS, 'host-reveal.png') });
        await players[2].screenshot({ path: path.join(SHOTS, 'player-phone-reveal.png') });
      }
    }, true);

    const podium = await host.locator('#top li').allTextContents();
    assert.equal(podium.length, 3);
    assert.match(podium[0], /^1\. ann — \d+$/);
    assert.match(podium[2], /^3\. cy — 0$/);
    for (const [i, p] of players.entries()) {
      await p.locator('#ended').waitFor({ state: 'visible', ...WAIT });
      await p.locator('#final', { hasText: `rank ${i + 1} of 3` }).waitFor(WAIT);
    }
    await host.screenshot({ path: path.join(SHOTS, 'host-podium.png') });
    await players[2].screenshot({ path: path.join(SHOTS, 'player-phone-podium.png') });
    for (const p of [host, ...players]) await p.close();
  } finally {
    node.stop();
  }
});

test('the host locks the lobby and removes a player', { timeout: 90_000 }, async () => {
  const node = await startNode();
  try {
    // This time from a pasted definition.
    const host = await browser.newPage();
    await host.goto(`${node.http}/host`);
    await host.locator('summary', { hasText: 'paste or upload' }).click();
    await host.fill('#json', JSON.stringify({ title: 'Pasted', questions: QUESTIONS.slice(0, 2) }));
    await host.click('#create-button');
    await host.locator('#join-code').waitFor(WAIT);
    const code = (await host.textContent('#join-code')).trim();
    const [ann, bob] = [await browser.newPage(), await browser.newPage()];
    await joinAs(ann, node.http, code, 'ann');
    await joinAs(bob, node.http, code, 'bob');

    await host.click('#lock');
    await host.locator('#lock-state', { hasText: 'locked' }).waitFor(WAIT);
    const late = await browser.newPage();
    await late.goto(`${node.http}/#${code}`);
    await late.fill('#nickname', 'late');
    await late.click('#join-button');
    await late.locator('#join-error', { hasText: 'closed this quiz to new players' }).waitFor(WAIT);
    await host.click('#lock'); // unlock
    await host.locator('#lock-state', { hasText: 'open to new players' }).waitFor(WAIT);

    await host.click('#start');
    for (const p of [ann, bob]) {
      await p.locator('.choice').first().waitFor({ state: 'visible', ...WAIT });
      await p.locator('.choice').nth(QUESTIONS[0].correct).click();
    }
    await host.locator('#top li', { hasText: 'bob' }).waitFor(WAIT);
    await host.getByRole('button', { name: 'Remove bob' }).click();
    await bob.locator('#gone-detail', { hasText: 'The host removed you' }).waitFor({ state: 'visible', ...WAIT });
    // The quiz goes on without bob.
    await host.click('#next');
    await ann.locator('#q-text', { hasText: QUESTIONS[1].text }).waitFor({ state: 'visible', ...WAIT });
    for (const p of [host, ann, bob, late]) await p.close();
  } finally {
    node.stop();
  }
});

test('every page resumes on another node when its node dies mid-quiz', { timeout: 120_000 }, async () => {
  const cluster = await startCluster(2);
  try {
    const base = cluster.http;
    const host = await browser.newPage();
    const code = await createFromForm(host, base);
    const players = [];
    for (const name of ['ann', 'bob', 'cy']) {
      const p = await browser.newPage();
      if (name === 'cy') await p.setViewportSize(PHONE);
      await joinAs(p, base, code, name);
      players.push(p);
    }
    const banners = [];
    for (const p of [host, ...players]) {
      await p.exposeFunction('sawBanner', () => banners.push(p));
      await p.evaluate(() => {
        new MutationObserver(() => {
          if (!document.getElementById('banner').hidden) window.sawBanner();
        }).observe(document.getElementById('banner'), { attributes: true });
      });
    }
    const picks = [(q) => q.correct, (q) => q.correct, (q) => (q.correct + 1) % 4];
    await play(host, players, picks, async (qi) => {
      if (qi === 0) {
        // Every page is on one node (the balancer keeps a source on one):
        // kill it between two questions.
        await cluster.killBusiest();
        for (const p of [host, ...players]) {
          await p.locator('#banner').waitFor({ state: 'hidden', timeout: 30_000 });
        }
      }
    });
    assert.ok(banners.length >= 4, `every page showed "reconnecting" (${banners.length})`);
    const podium = await host.locator('#top li').allTextContents();
    assert.match(podium[0], /^1\. ann — \d+$/);
    for (const p of players) await p.locator('#ended').waitFor({ state: 'visible', ...WAIT });
    for (const p of [host, ...players]) await p.close();
  } finally {
    cluster.stop();
  }
});
