-- Every score with the quiz's seq, read in one step.
-- Reply: {'not_found'} | {'ok', seq, member, negated score, member, negated score, ...}
if redis.call('EXISTS', META) == 0 then return {'not_found'} end
local out = {'ok', redis.call('HGET', META, 'seq')}
for _, v in ipairs(redis.call('ZRANGE', SCORES, 0, -1, 'WITHSCORES')) do out[#out + 1] = v end
return out
