-- arg 1: definition json  2: host secret  3: question count  4: most players it admits
if redis.call('EXISTS', META) == 1 then return 0 end
redis.call('HSET', META, 'phase', 'lobby', 'qcount', arg(3), 'cur', -1, 'seq', 0, 'players', 0, 'answered', 0,
  'host', arg(2), 'lb_dirty', 0, 'lb_ms', -1, 'max', arg(4))
redis.call('SET', DEF, arg(1))
-- Placeholders, so that every key exists and carries the quiz's TTL.
redis.call('HSET', ANSWERS, '_', '')
refresh()
return 1
