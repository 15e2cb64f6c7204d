"""The Lua scripts the Redis store runs: each is one atomic step on the server, in one round trip."""

from __future__ import annotations

# INCR, and start the window's TTL on the first hit only: atomic, and one key (so it works on a cluster).
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
"""
INCR_WITH_TTL = _COUNT + "return count\n"
# The same count, and a read of another key, in one round trip (a rate-limited request that reads next).
INCR_AND_GET = _COUNT + "return {count, redis.call('GET', KEYS[2])}\n"

# The capped log is a stream: its entry ids are the Redis server's clock (the same for every replica), so
# "older than ttl" is one XTRIM MINID. Trimmed on write and on read; the key itself expires with its newest entry.
# ARGV: max entries, ttl, then the entries, oldest first (a batch, see broker.store.log_batches).
LOG_APPEND = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local ttl_ms = tonumber(ARGV[2]) * 1000
for i = 3, #ARGV do redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'v', ARGV[i]) end
redis.call('XTRIM', KEYS[1], 'MINID', now_ms - ttl_ms + 1)
redis.call('PEXPIRE', KEYS[1], ttl_ms)
"""
LOG_RECENT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('XTRIM', KEYS[1], 'MINID', now_ms - tonumber(ARGV[2]) * 1000 + 1)
local values = {}
for _, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1])) do
  values[#values + 1] = entry[2][2]
end
return values
"""


# The epoch, written when absent (ARGV[1]: the value to write). Returns {epoch, 1 if it was just written}.
EPOCH = """
local epoch = redis.call('GET', KEYS[1])
if epoch then return {epoch, 0} end
redis.call('SET', KEYS[1], ARGV[1])
return {ARGV[1], 1}
"""

# consume, atomically. KEYS: epoch, replay entry[, pending login]. ARGV: token (random per call, so a retry of
# the same call after a lost answer finds its own entry and succeeds), ttl, issued_at, epoch to write if absent.
CONSUME = """
local epoch = redis.call('GET', KEYS[1])
local wiped = 0
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[1], epoch)
  wiped = 1
end
local seen = redis.call('GET', KEYS[2])
if seen == ARGV[1] then return {'ok', epoch, wiped} end
if seen then return {'replay', epoch, wiped} end
if #KEYS == 2 and tonumber(ARGV[3]) < tonumber(epoch) then return {'before_epoch', epoch, wiped} end
if #KEYS == 3 and redis.call('DEL', KEYS[3]) == 0 then return {'pending_gone', epoch, wiped} end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return {'ok', epoch, wiped}
"""

# the replay entry alone (a cluster's consume): 1 written (or written by this same call before), 0 there already
ADD_ONCE = """
local seen = redis.call('GET', KEYS[1])
if seen == ARGV[1] then return 1 end
if seen then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""

# store.claim: the first value stays; the same value again renews the TTL (a returning user, one round trip)
CLAIM = """
local found = redis.call('GET', KEYS[1])
if not found then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return false
end
if found == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return found
"""
