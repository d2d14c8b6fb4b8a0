/**
 * The fleet's Redis scripts for what a buyer defines rather than spends: API keys, budgets, read sessions and the
 * nonces of wallet-signed messages (store-layout.ts names the keys). Every change of a buyer's keys or budgets bumps
 * `dv:<buyer>`, which the reserve script compares with the version the instance last adopted (lua-scripts.ts): a
 * revocation or a new budget is seen by every instance before its next paid call, at no extra round trip.
 */
import { LUA_DECIMAL } from "./lua-decimal";

/** ARGV: prefix, buyer, key hash, the key's definition (JSON). Creates or replaces it (a revocation) and bumps the version. */
export const PUT_KEY_SCRIPT = `
local P, buyer, keyHash, definition = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('SET', P .. 'kd:' .. keyHash, definition)
redis.call('SADD', P .. 'kb:' .. buyer, keyHash)
return redis.call('INCR', P .. 'dv:' .. buyer)
`;

/** ARGV: prefix, buyer, budget id, its definition (JSON, with deletedAt once deleted). */
export const PUT_BUDGET_SCRIPT = `
local P, buyer, id, definition = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('HSET', P .. 'gd:' .. buyer, id, definition)
return redis.call('INCR', P .. 'dv:' .. buyer)
`;

/**
 * ARGV: prefix, buyer, this instance. Returns {version, key definitions, what the other instances spent with each key
 * (decimal strings, same order), budget definitions}, read in one step so the version matches what is returned.
 */
export const SYNC_BUYER_SCRIPT = `${LUA_DECIMAL}
local P, buyer, me = ARGV[1], ARGV[2], ARGV[3]
local version = redis.call('GET', P .. 'dv:' .. buyer) or '0'
local keys, spent = {}, {}
for _, keyHash in ipairs(redis.call('SMEMBERS', P .. 'kb:' .. buyer)) do
  local definition = redis.call('GET', P .. 'kd:' .. keyHash)
  if definition then
    keys[#keys + 1] = definition
    local sum = {}
    local fields = redis.call('HGETALL', P .. 'k:' .. cjson.decode(definition).id)
    for i = 1, #fields, 2 do
      if string.sub(fields[i], 1, 2) == 's:' and string.sub(fields[i], 3) ~= me then sum = dadd(sum, dparse(fields[i + 1])) end
    end
    spent[#spent + 1] = dstr(sum)
  end
end
return {version, keys, spent, redis.call('HVALS', P .. 'gd:' .. buyer)}
`;

/** ARGV: prefix, buyer, nonce, expiry (unix seconds). 1 the first time the fleet sees the nonce, 0 after. */
export const CONSUME_NONCE_SCRIPT = `
local ok = redis.call('SET', ARGV[1] .. 'n:' .. ARGV[2] .. ':' .. ARGV[3], '1', 'NX', 'EXAT', ARGV[4])
if ok then return 1 end
return 0
`;
