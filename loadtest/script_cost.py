#!/usr/bin/env python3
"""Redis's own cost of quizgate's join script, on an idle private redis-server.

    python3 loadtest/script_cost.py            # the scripts in this checkout
    python3 loadtest/script_cost.py 9acbc7c    # the scripts of an older commit, for a before/after

Creates one quiz, runs N joins (pipelined, 500 at a time) and prints Redis's
`INFO commandstats` µs per EVALSHA call. Loopback only; standard library only.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = "crates/quizgate-backplane/src/redis/"


def source(name, rev):
    if rev:
        return subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{SCRIPTS}{name}"],
                              capture_output=True, text=True, check=True).stdout
    with open(os.path.join(ROOT, SCRIPTS, name)) as f:
        return f.read()


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")

    def read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind in b"+:":
            return rest
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *args):
        self.sock.sendall(resp(*args))
        return self.read()

    def pipeline(self, calls):
        self.sock.sendall(b"".join(resp(*c) for c in calls))
        return [self.read() for _ in calls]


def main():
    rev = sys.argv[1] if len(sys.argv) > 1 else None
    n = int(os.environ.get("N", 3000))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    workdir = tempfile.mkdtemp(prefix="quizgate-script-cost-")
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                conn = Conn(port)
                conn.call("PING")
                break
            except OSError:
                time.sleep(0.05)
        prelude = source("prelude.lua", rev)
        create = conn.call("SCRIPT", "LOAD", prelude + "\n" + source("create.lua", rev))
        join = conn.call("SCRIPT", "LOAD", prelude + "\n" + source("join.lua", rev))
        code = "BENCH2"
        keys = [f"{{q:{code}}}:{k}" for k in "meta def nicks players secrets scores answers dist log".split()]
        common = [f"{{q:{code}}}:events", "PUBLISH", 10000, 3600000, 600000, 250]
        definition = json.dumps({"title": "t", "questions": [
            {"text": "q", "choices": ["a", "b", "c", "d"], "correct": 0, "time_limit_ms": 20000, "points": 1000}]})
        conn.call("EVALSHA", create, 9, *keys, *common, definition, "h" * 32, 1)
        conn.call("CONFIG", "RESETSTAT")
        for first in range(0, n, 500):
            replies = conn.pipeline([("EVALSHA", join, 9, *keys, *common, f"p{i}", f"p{i}", "s" * 32, 1_000_000)
                                     for i in range(first, min(first + 500, n))])
            if any(r[0] != b"ok" for r in replies):
                raise RuntimeError(f"a join was refused: {replies[0]}")
        stats = conn.call("INFO", "commandstats").decode()
        us = next(float(line.split("usec_per_call=")[1].split(",")[0])
                  for line in stats.splitlines() if line.startswith("cmdstat_evalsha:"))
        print(json.dumps({"scripts": rev or "checkout", "joins": n, "join_us_per_call": us}))
    finally:
        redis.kill()
        redis.wait()


if __name__ == "__main__":
    main()
