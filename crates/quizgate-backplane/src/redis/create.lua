-- ARGV 7: definition json  8: host secret  9: question count
if redis.call('EXISTS', META) == 1 then return 0 end
redis.call('HSET', META, 'phase', 'lobby', 'qcount', ARGV[9], 'cur', -1, 'seq', 0, 'players', 0, 'answered', 0,
  'host', ARGV[8], 'lb_dirty', 0, 'lb_ms', -1)
redis.call('SET', DEF, ARGV[7])
-- Placeholders, so that every key exists and carries the quiz's TTL.
redis.call('HSET', ANSWERS, '_', '')
touch(false)
return 1
