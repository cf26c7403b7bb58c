-- ARGV 7: host secret
if redis.call('EXISTS', META) == 0 then return {'not_found'} end
if redis.call('HGET', META, 'host') ~= ARGV[7] then return {'invalid'} end
return {'ok', snapshot(false)}
