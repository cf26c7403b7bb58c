#!/usr/bin/env python3
"""A mass join, costed: CPU per connection of the nodes, the generators and Redis.

    PER=10000 NODES=3 RATE=500 python3 loadtest/joinstorm.py

One quiz per node, one generator process per node connecting at RATE/s. Prints
one JSON line once every player joined (or after 600 s). Uses bench.py's
cluster (release build, Redis with AOF, loopback only).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

per = int(os.environ.get("PER", 10000))
nodes = int(os.environ.get("NODES", 3))
rate = os.environ.get("RATE", "500")
c = bench.Cluster(nodes)
gens = []
try:
    t0 = time.time()
    gens = bench.per_node_players(c, per, ["--connect-rate", rate])
    joined = all(g.wait_ready(600) for g in gens)
    secs = time.time() - t0
    total = per * nodes
    us = lambda s: round(s / total * 1e6)
    print(json.dumps({
        "players": total, "all_joined": joined, "secs": round(secs, 1), "rate": round(total / secs),
        "node_us_per_conn": us(c.node_cpu()),
        "generator_us_per_conn": us(sum(bench.cpu(g.proc.pid) for g in gens)),
        "redis_us_per_conn": us(bench.cpu(c.redis.pid)),
        "redis_us_per_script": c.script_us(),
        "node_rss_mib": [round(bench.rss(n["proc"].pid) / 2**20) for n in c.nodes],
    }))
finally:
    for g in gens:
        g.proc.kill()
        g.proc.wait()
    c.stop()
