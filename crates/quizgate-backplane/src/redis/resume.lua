-- ARGV 7: player id  8: session secret  9: last seq the client saw
if redis.call('EXISTS', META) == 0 then return {'invalid'} end
local secret = redis.call('HGET', SECRETS, ARGV[7])
if not secret or secret ~= ARGV[8] then return {'invalid'} end
local snap = snapshot(tonumber(ARGV[7]))
local head, last = tonumber(redis.call('HGET', META, 'seq')), tonumber(ARGV[9])
if last >= head then return {'ok', snap, 1} end
local first = redis.call('XRANGE', LOG, '-', '+', 'COUNT', 1)
local oldest = head + 1
if #first > 0 then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
-- The log no longer reaches back to the client's gap: the snapshot replaces it.
if last + 1 < oldest then return {'ok', snap, 0} end
local out = {'ok', snap, 1}
for _, entry in ipairs(redis.call('XRANGE', LOG, int(last + 1) .. '-0', '+')) do out[#out + 1] = entry[2][2] end
return out
