-- arg 1: question index. Closes it if still open and past its deadline.
if redis.call('EXISTS', META) == 0 then return 0 end
local m = redis.call('HMGET', META, 'phase', 'cur', 'deadline')
local now = now_ms()
if m[1] ~= 'question' or tonumber(m[2]) ~= tonumber(arg(1)) or now <= tonumber(m[3]) then return 0 end
close(now, 'deadline')
refresh()
return 1
