-- Group commit: a batch of answers to one quiz, in one atomic step.
-- arg 1: n, then n quadruples: player id, question index, choice, and the
-- answer's traceparent ('' = not traced), which the events it causes carry.
-- Reply: {'gone'} if the quiz does not exist, else two items per answer, in
-- order: a tag ('accepted' | 'duplicate' | 'wrong_phase' | 'late' |
-- 'invalid_choice' | 'not_found') and the answer record ('' when none).
-- Each answer is judged as quizgate_domain::Quiz::answer judges it, one after
-- the other, all at the same `now`: the last player's answer closes the
-- question, and the answers after it in the batch are late.
if redis.call('EXISTS', META) == 0 then return {'gone'} end
-- Once for the batch: every answer in it is activity at the same instant.
refresh()
local now = now_ms()
local m = redis.call('HMGET', META, 'phase', 'cur', 'started', 'deadline', 'qchoices', 'qcorrect', 'qpoints', 'qlimit')
local phase, cur, started, deadline = m[1], tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
local nchoices, correct, qpoints, limit = tonumber(m[5]), tonumber(m[6]), tonumber(m[7]), tonumber(m[8])
local players = active_players()
-- A score changed since the cached top 10 was last dropped.
local scored = false
local function drop_top()
  if scored then top_changed() end
  scored = false
end

local function judge(pid, idx, choice)
  if redis.call('HEXISTS', PLAYERS, pid) == 0 then return 'not_found' end
  if removed(pid) then return 'wrong_phase' end
  local akey = pid .. ':' .. int(idx)
  local rec = redis.call('HGET', ANSWERS, akey)
  if rec then return 'duplicate', rec end
  if cur < 0 or phase == 'ended' or idx > cur then return 'wrong_phase' end
  if idx < cur or phase == 'reveal' or now > deadline then return 'late' end
  if choice >= nchoices then return 'invalid_choice' end
  local points = 0
  if choice == correct and qpoints > 0 then
    local span = math.max(limit, 1)
    local elapsed = math.min(math.max(now - started, 0), span)
    local num = qpoints * (2 * span - elapsed)
    points = math.floor((2 * num + 2 * span) / (4 * span))
  end
  local total = -tonumber(redis.call('ZINCRBY', SCORES, -points, pad(pid)))
  if points > 0 then scored = true end
  rec = int(choice) .. ':' .. int(points) .. ':' .. int(total)
  redis.call('HSET', ANSWERS, akey, rec)
  redis.call('HINCRBY', DIST, choice, 1)
  if redis.call('HINCRBY', META, 'answered', 1) >= players then
    drop_top() -- the reveal's leaderboard shows this answer
    close(now, 'all_answered')
    phase = 'reveal'
  end
  return 'accepted', rec
end

local out = {}
for i = 0, tonumber(arg(1)) - 1 do
  TRACE = arg(5 + 4 * i)
  local tag, rec = judge(arg(2 + 4 * i), tonumber(arg(3 + 4 * i)), tonumber(arg(4 + 4 * i)))
  out[#out + 1] = tag
  out[#out + 1] = rec or ''
end
-- The top 10 is rebuilt at most once per batch, when it is next read.
drop_top()
return out
