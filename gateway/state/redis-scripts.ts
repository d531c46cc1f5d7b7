/**
 * The Lua scripts of the Redis adapter (redis.ts). Each runs atomically on the
 * server (Redis runs one script at a time), sent by ioredis `defineCommand`:
 * EVALSHA, with the script loaded by EVAL on a connection's first use and
 * again after NOSCRIPT (a restarted or flushed server).
 *
 * Numbers written to Redis go through `string.format('%.0f', n)`: Redis turns
 * a Lua number argument into text with limited precision, which would round
 * µs instants (~1.8e15). Requires Redis ≥ 5 (scripts that read TIME and then
 * write are replicated by effects, the default since 5).
 *
 * Cache entries are hashes { v: body, s: storedAt ms, l: ttl ms, g: JSON array
 * of the full names of their tags' sets }; a tag's set holds the full names of
 * the entries carrying it. The scripts reach keys named inside those values,
 * which is fine on one Redis (not on Redis Cluster).
 */

/**
 * GCRA (gcra.ts `gcraStep`, line for line). KEYS[1] the bucket; ARGV cost
 * (c × I, µs), capacity (C, µs), now (µs; empty = the server's TIME, so
 * gateways with skewed clocks agree). Answers { allowed 0|1, TAT after (µs),
 * now (µs), retry (µs) }.
 */
export const rateLimitLua = `
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
local cost, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local nxt = tat + cost
local allowAt = nxt - capacity
if now < allowAt then return { 0, tat, now, allowAt - now } end
if cost > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', math.ceil((nxt - now) / 1000)))
end
return { 1, nxt, now, 0 }
`;

/**
 * Stores a cache entry. KEYS[1] the entry, KEYS[2..] its tags' sets (distinct);
 * ARGV body, ttl ms. Takes a replaced entry out of its old tags' sets; gives
 * each tag set a TTL at least the entry's; and prunes each: two random members
 * whose entry is gone are removed per write, so a set stays within about
 * twice its live entries. Answers storedAt (server time, ms).
 */
export const cacheSetLua = `
local entry, ttl = KEYS[1], tonumber(ARGV[2])
local old = redis.call('HGET', entry, 'g')
if old then
  for _, set in ipairs(cjson.decode(old)) do redis.call('SREM', set, entry) end
end
local t = redis.call('TIME')
local storedAt = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local sets = {}
for i = 2, #KEYS do sets[#sets + 1] = KEYS[i] end
redis.call('HSET', entry, 'v', ARGV[1], 's', storedAt, 'l', ARGV[2], 'g', #sets > 0 and cjson.encode(sets) or '[]')
redis.call('PEXPIRE', entry, ARGV[2])
for _, set in ipairs(sets) do
  redis.call('SADD', set, entry)
  for _, member in ipairs(redis.call('SRANDMEMBER', set, 2)) do
    if redis.call('EXISTS', member) == 0 then redis.call('SREM', set, member) end
  end
  if redis.call('PTTL', set) < ttl then redis.call('PEXPIRE', set, ARGV[2]) end
end
return storedAt
`;

/**
 * Drops every live entry carrying a tag. KEYS[1] the tag's set. An entry
 * counts only if it still carries the tag (one that expired and was stored
 * again without it may linger in the set); dropping it also takes it out of
 * its other tags' sets. Deletes the set. Answers how many entries were dropped
 * (DEL of an expired entry counts 0, so expired entries are not counted).
 */
export const cacheInvalidateLua = `
local dropped = 0
for _, entry in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local g = redis.call('HGET', entry, 'g')
  if g then
    local sets, carries = cjson.decode(g), false
    for _, set in ipairs(sets) do
      if set == KEYS[1] then carries = true end
    end
    if carries then
      for _, set in ipairs(sets) do
        if set ~= KEYS[1] then redis.call('SREM', set, entry) end
      end
      dropped = dropped + redis.call('DEL', entry)
    end
  end
end
redis.call('DEL', KEYS[1])
return dropped
`;
