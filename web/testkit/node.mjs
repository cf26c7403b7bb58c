// Test helpers: a real quizgate node process, and a TCP proxy the test can cut.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = process.env.QUIZGATE_BIN ?? path.join(ROOT, 'target/debug/quizgate');

/** Node's own WebSocket (22+), else the `ws` package's. */
export const WebSocket = globalThis.WebSocket ?? (await import('ws')).WebSocket;

/** Starts an embedded node on free ports; resolves once it serves. */
export function startNode(env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, [], {
      env: {
        ...process.env,
        QUIZGATE_LISTEN: '127.0.0.1:0',
        QUIZGATE_ADMIN_LISTEN: '127.0.0.1:0',
        QUIZGATE_API_KEYS: '',
        QUIZGATE_LEADERBOARD_INTERVAL: '100ms',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let buf = '';
    let addr = null;
    const timer = setTimeout(() => reject(new Error('node did not start')), 15_000);
    child.stderr.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let v;
        try {
          v = JSON.parse(line);
        } catch {
          continue;
        }
        if (v.message === 'listening') addr = v.ws_addr;
        if (v.message === 'serving' && addr) {
          clearTimeout(timer);
          resolve({ child, addr, http: `http://${addr}`, ws: `ws://${addr}/ws`, stop: () => child.kill('SIGKILL') });
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`node exited (${code})`)));
  });
}

/** A TCP proxy to `target` ("host:port"); `cut()` drops every connection through it. */
export function startProxy(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const addr = `127.0.0.1:${server.address().port}`;
      resolve({
        ws: `ws://${addr}/ws`,
        cut() {
          for (const s of sockets) s.destroy();
        },
        close() {
          for (const s of sockets) s.destroy();
          server.close();
        },
      });
    });
  });
}

/** Resolves with the first `type` event whose detail passes `test`, within `ms`. */
export function next(client, type, test = () => true, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.removeEventListener(type, on);
      reject(new Error(`no ${type} within ${ms} ms`));
    }, ms);
    const on = (e) => {
      if (!test(e.detail)) return;
      clearTimeout(timer);
      client.removeEventListener(type, on);
      resolve(e.detail);
    };
    client.addEventListener(type, on);
  });
}

export function quiz(n, timeLimitMs = 60_000) {
  return {
    title: 'Test',
    questions: Array.from({ length: n }, (_, i) => ({
      text: `Question ${i}?`,
      choices: ['red', 'green', 'blue'],
      correct: i % 3,
      time_limit_ms: timeLimitMs,
    })),
  };
}

/** A free loopback port (bound, then let go). */
export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, ms = 10_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const up = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

/**
 * Redis, `n` nodes on it and HAProxy in front (TCP, `balance source`, health
 * checks on /readyz), as `make cluster` runs them; `http`/`ws` are the
 * balancer's. `killBusiest()` kills the node holding the most connections.
 */
export async function startCluster(n) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quizgate-cluster-'));
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--dir', dir], { stdio: 'ignore' });
  await waitForPort(redisPort);
  const nodes = [];
  for (let i = 0; i < n; i++) {
    const [ws, admin] = [await freePort(), await freePort()];
    const node = await startNode({
      QUIZGATE_LISTEN: `127.0.0.1:${ws}`,
      QUIZGATE_ADMIN_LISTEN: `127.0.0.1:${admin}`,
      QUIZGATE_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      QUIZGATE_OPEN_CREATE: 'true',
      QUIZGATE_SESSION_KEYS: `test:${'ab'.repeat(32)}`,
    });
    nodes.push({ ...node, ws, admin });
  }
  const lbPort = await freePort();
  const servers = nodes
    .map((x, i) => `  server n${i} 127.0.0.1:${x.ws} check port ${x.admin} inter 200ms fall 2 rise 2`)
    .join('\n');
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(
    cfg,
    `global\n  maxconn 2000\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 1h\n  timeout server 1h\n` +
      `frontend fe\n  bind 127.0.0.1:${lbPort}\n  default_backend nodes\n` +
      `backend nodes\n  balance source\n  option httpchk GET /readyz\n${servers}\n`,
  );
  const haproxy = spawn('haproxy', ['-f', cfg, '-db'], { stdio: 'ignore' });
  await waitForPort(lbPort);
  const connections = async (x) => {
    try {
      const text = await (await fetch(`http://127.0.0.1:${x.admin}/metrics`)).text();
      return Number(/^quizgate_connections (\d+)/m.exec(text)?.[1] ?? 0);
    } catch {
      return -1;
    }
  };
  return {
    http: `http://127.0.0.1:${lbPort}`,
    ws: `ws://127.0.0.1:${lbPort}/ws`,
    async killBusiest() {
      const counts = await Promise.all(nodes.map(connections));
      const i = counts.indexOf(Math.max(...counts));
      nodes[i].stop();
      return i;
    },
    stop() {
      for (const x of nodes) x.stop();
      haproxy.kill('SIGKILL');
      redis.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
