-- Shared by every quizgate script. quizgate-domain is the specification: these
-- scripts apply its rules, every constant comes from Rust (ARGV), and the
-- differential test (crates/quizgate-backplane/tests/it/differential.rs) runs
-- generated operations on both and compares every outcome and event.
--
-- KEYS (all in the quiz's hash slot, `{q:CODE}`):
--   1 meta  2 def  3 nicks  4 players  5 secrets  6 scores  7 answers  8 dist  9 log
-- ARGV (common, see RedisBackplane::eval): 1 channel  2 publish command (PUBLISH
--   or SPUBLISH)  3 log max length  4 idle ttl ms  5 ended ttl ms  6 leaderboard
--   interval ms  7 the time in ms ('' = Redis TIME; set only by tests)  8 max
--   players  9 leaderboard size  10 leaderboard delivery budget per second
--   11 the W3C traceparent of the traced call ('' = not traced): its events
--   carry it, as "tp". A script's own arguments follow: arg(1) is ARGV[12].
local META, DEF, NICKS, PLAYERS, SECRETS, SCORES, ANSWERS, DIST, LOG =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local CHANNEL, PUBCMD = ARGV[1], ARGV[2]
local LOGMAX, IDLE_TTL, ENDED_TTL, LB_INTERVAL = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local FIXED_NOW, MAX_PLAYERS, TOP_SIZE, LB_BUDGET = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
-- Assignable: a batch of answers sets each answer's own before judging it.
local TRACE = ARGV[11]
local function arg(i) return ARGV[11 + i] end

local function int(x) return string.format('%d', x) end
local function pad(id) return string.format('%08d', tonumber(id)) end
-- A player the host removed is out of the scores (every joined player has one
-- from its join on). Callers know `pid` joined.
local function removed(pid) return redis.call('ZSCORE', SCORES, pad(pid)) == false end
-- Players in the quiz: joined ('players' also hands out ids), not removed.
local function active_players()
  local m = redis.call('HMGET', META, 'players', 'removed')
  return tonumber(m[1]) - tonumber(m[2] or 0)
end

-- Redis's clock decides, for every node alike.
local function now_ms()
  if FIXED_NOW ~= '' then return tonumber(FIXED_NOW) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Secrets are compared by their digests, so the time a comparison takes says
-- nothing about how much of a guessed secret was right.
local function same_secret(a, b)
  return a ~= false and a ~= nil and redis.sha1hex(a) == redis.sha1hex(b)
end

-- As quizgate_domain::retention: every key lives for the idle TTL after any
-- activity, or for the ended TTL once the quiz has ended.
local function refresh()
  local ttl = IDLE_TTL
  if redis.call('HGET', META, 'phase') == 'ended' then ttl = ENDED_TTL end
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end

-- Append to the log and publish, under the quiz's next sequence number.
local function emit(now, event)
  local seq = redis.call('HINCRBY', META, 'seq', 1)
  local tp = ''
  if TRACE ~= '' then tp = ',"tp":' .. cjson.encode(TRACE) end
  local payload = '{"seq":' .. int(seq) .. ',"ts_ms":' .. int(now) .. ',"event":' .. event .. tp .. '}'
  redis.call('XADD', LOG, 'MAXLEN', LOGMAX, int(seq) .. '-1', 'e', payload)
  redis.call(PUBCMD, CHANNEL, payload)
  return seq
end

-- Top 10: scores are stored negated so that ZRANGE gives the highest first and
-- ties in join order (members are zero-padded player ids). It changes only when
-- a score changes or one of the first ten players joins (`top_changed`), so it
-- is kept in META: a mass join does not rebuild it for every player.
local function top_json()
  local cached = redis.call('HGET', META, 'top')
  if cached then return cached end
  local raw = redis.call('ZRANGE', SCORES, 0, TOP_SIZE - 1, 'WITHSCORES')
  local parts, rank, last = {}, 0, nil
  for i = 1, #raw, 2 do
    local id, score = tonumber(raw[i]), -tonumber(raw[i + 1])
    local n = (i + 1) / 2
    if score ~= last then rank, last = n, score end
    parts[#parts + 1] = '{"player_id":' .. int(id) .. ',"nickname":' .. cjson.encode(redis.call('HGET', PLAYERS, int(id)))
      .. ',"score":' .. int(score) .. ',"rank":' .. int(rank) .. '}'
  end
  local top = '[' .. table.concat(parts, ',') .. ']'
  redis.call('HSET', META, 'top', top)
  return top
end

local function top_changed() redis.call('HDEL', META, 'top') end

local function dist_json(n)
  local parts = {}
  for c = 0, n - 1 do parts[#parts + 1] = int(tonumber(redis.call('HGET', DIST, c) or 0)) end
  return '[' .. table.concat(parts, ',') .. ']'
end

local function record_json(rec)
  local choice, points, total = string.match(rec, '^(%d+):(%d+):(%d+)$')
  return '{"choice":' .. choice .. ',"points":' .. points .. ',"total":' .. total .. '}'
end

local function push_leaderboard(now)
  redis.call('HSET', META, 'lb_dirty', 0, 'lb_ms', now)
  emit(now, '{"t":"leaderboard","top":' .. top_json() .. ',"players":' .. int(active_players()) .. '}')
end

local function close(now, reason)
  local m = redis.call('HMGET', META, 'cur', 'qcorrect', 'qchoices', 'answered')
  redis.call('HSET', META, 'phase', 'reveal')
  emit(now, '{"t":"question_closed","index":' .. m[1] .. ',"correct":' .. m[2] .. ',"distribution":' .. dist_json(tonumber(m[3]))
    .. ',"answered":' .. m[4] .. ',"reason":"' .. reason .. '"}')
  if reason ~= 'ended' then push_leaderboard(now) end
end

local function ask(now, idx)
  local def = cjson.decode(redis.call('GET', DEF))
  local q = def.questions[idx + 1]
  local deadline = now + q.time_limit_ms
  for c = 0, #q.choices - 1 do redis.call('HSET', DIST, c, 0) end
  redis.call('HSET', META, 'phase', 'question', 'cur', idx, 'started', now, 'deadline', deadline, 'answered', 0,
    'qcorrect', q.correct, 'qpoints', q.points, 'qlimit', q.time_limit_ms, 'qchoices', #q.choices)
  emit(now, '{"t":"question_started","index":' .. int(idx) .. ',"started_ms":' .. int(now) .. ',"deadline_ms":' .. int(deadline) .. '}')
end

local function end_quiz(now)
  redis.call('HSET', META, 'phase', 'ended')
  emit(now, '{"t":"quiz_ended","top":' .. top_json() .. ',"players":' .. int(active_players()) .. '}')
end

local function snapshot(pid)
  local m = redis.call('HMGET', META, 'phase', 'qcount', 'cur', 'started', 'deadline', 'answered', 'qchoices', 'players', 'seq', 'locked')
  local phase, cur = m[1], tonumber(m[3])
  local question = 'null'
  if phase ~= 'ended' and cur >= 0 then
    question = '{"index":' .. m[3] .. ',"started_ms":' .. m[4] .. ',"deadline_ms":' .. m[5] .. ',"answered":' .. m[6]
      .. ',"distribution":' .. dist_json(tonumber(m[7])) .. '}'
  end
  local you = 'null'
  if pid and not removed(pid) then
    local stored = tonumber(redis.call('ZSCORE', SCORES, pad(pid)))
    local rank = redis.call('ZCOUNT', SCORES, '-inf', '(' .. int(stored)) + 1
    local answer = 'null'
    if cur >= 0 then
      local rec = redis.call('HGET', ANSWERS, pid .. ':' .. int(cur))
      if rec then answer = record_json(rec) end
    end
    you = '{"player_id":' .. int(pid) .. ',"nickname":' .. cjson.encode(redis.call('HGET', PLAYERS, pid)) .. ',"score":' .. int(-stored)
      .. ',"rank":' .. int(rank) .. ',"answer":' .. answer .. '}'
  end
  return '{"phase":"' .. phase .. '","question_count":' .. m[2] .. ',"question":' .. question .. ',"players":' .. int(active_players())
    .. ',"top":' .. top_json() .. ',"seq":' .. m[9] .. ',"you":' .. you .. ',"locked":' .. tostring(m[10] == '1') .. '}'
end

-- As quizgate_domain::replay: the events after `last` (a list, empty when up to
-- date), or nil when the snapshot must replace the client's state.
local function replay(last)
  local head = tonumber(redis.call('HGET', META, 'seq'))
  if last > head then return nil end
  if last == head then return {} end
  local first = redis.call('XRANGE', LOG, '-', '+', 'COUNT', 1)
  if #first == 0 then return nil end
  if last + 1 < tonumber(string.match(first[1][1], '^(%d+)')) then return nil end
  local out = {}
  for _, entry in ipairs(redis.call('XRANGE', LOG, int(last + 1) .. '-0', '+')) do out[#out + 1] = entry[2][2] end
  return out
end

-- A welcome's reply: 'ok', the snapshot, then 0 (no replay) or 1 and the events.
local function welcome(snap, missed)
  if missed == nil then return {'ok', snap, 0} end
  local out = {'ok', snap, 1}
  for _, e in ipairs(missed) do out[#out + 1] = e end
  return out
end
