-- ARGV 7: question index. Closes it if still open and past its deadline.
if redis.call('EXISTS', META) == 0 then return 0 end
local m = redis.call('HMGET', META, 'phase', 'cur', 'deadline')
local now = now_ms()
if m[1] ~= 'question' or tonumber(m[2]) ~= tonumber(ARGV[7]) or now <= tonumber(m[3]) then return 0 end
close(now, 'deadline')
touch(false)
return 1
