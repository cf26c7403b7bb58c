-- arg 1: start | next | skip | end | lock | unlock
-- Reply: 'not_found' | 'wrong_phase' | 'done'
if redis.call('EXISTS', META) == 0 then return 'not_found' end
local now = now_ms()
local phase, cmd = redis.call('HGET', META, 'phase'), arg(1)
if cmd == 'start' and phase == 'lobby' then
  ask(now, 0)
elseif cmd == 'next' and phase == 'reveal' then
  local nxt = tonumber(redis.call('HGET', META, 'cur')) + 1
  if nxt < tonumber(redis.call('HGET', META, 'qcount')) then ask(now, nxt) else end_quiz(now) end
elseif cmd == 'skip' and phase == 'question' then
  close(now, 'skipped')
elseif cmd == 'end' and (phase == 'lobby' or phase == 'reveal') then
  end_quiz(now)
elseif cmd == 'end' and phase == 'question' then
  close(now, 'ended')
  end_quiz(now)
elseif (cmd == 'lock' or cmd == 'unlock') and phase ~= 'ended' then
  -- An event only when it changes something, as the domain.
  local want = (cmd == 'lock') and '1' or '0'
  if (redis.call('HGET', META, 'locked') or '0') ~= want then
    redis.call('HSET', META, 'locked', want)
    emit(now, '{"t":"lobby_locked","locked":' .. tostring(want == '1') .. '}')
  end
else
  refresh()
  return 'wrong_phase'
end
-- Once, after the change: an `end` switches the keys to the ended TTL.
refresh()
return 'done'
