/**
 * The fleet's Redis scripts. Each runs atomically in Redis, so no lock is ever taken: the check-and-reserve of a
 * call against everything the other instances hold and have not settled is one round trip.
 *
 * Keys are built inside the scripts from the prefix (store-layout.ts names them): one Redis server, not a cluster.
 */
import { LUA_DECIMAL } from "./lua-decimal";

const NOW = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * The other signers' unsettled usage of a buyer that a snapshot does not include yet (entries from the signer's
 * nextSequence in that snapshot on; a signer the snapshot did not read counts whole), and the pruning of what the
 * chain settled. An entry goes only `grace` ms after a snapshot first showed it settled: every snapshot still in use
 * then (they live at most a few account-cache periods) was read after that settlement and excludes it too.
 *
 * Until then the settled entries stay in the set, and a busy buyer's can number thousands (its calls per second
 * times the grace), so walking them on every call would make each reserve cost milliseconds of Redis's one thread.
 * Instead `us:<buyer>:<signer>` keeps, per sequence a snapshot showed as the signer's next, the sum of the entries
 * below it: computed once, kept exact by the publish of a late entry below it and by pruning, dropped with the
 * entries it covered. Every snapshot with that sequence (all instances see the same chain) subtracts one number.
 */
const UNSETTLED = `
local function unsettledOthers(P, buyer, mySigner, signerNext, now, grace)
  local sum = {}
  local totalsKey, marksKey = P .. 'ut:' .. buyer, P .. 'uw:' .. buyer
  local totals = redis.call('HGETALL', totalsKey)
  for i = 1, #totals, 2 do
    local signer, total = totals[i], dparse(totals[i + 1])
    local setKey = P .. 'u:' .. buyer .. ':' .. signer
    local belowKey = P .. 'us:' .. buyer .. ':' .. signer
    local mark = redis.call('HGET', marksKey, signer)
    if mark then
      local sep = string.find(mark, ':', 1, true)
      local markSeq, markAt = string.sub(mark, 1, sep - 1), tonumber(string.sub(mark, sep + 1))
      if now - markAt >= grace then
        local gone = redis.call('ZRANGEBYSCORE', setKey, '-inf', '(' .. markSeq)
        if #gone > 0 then
          local goneSum = {}
          for _, member in ipairs(gone) do goneSum = dadd(goneSum, dparse(string.sub(member, string.find(member, ':', 1, true) + 1))) end
          total = dsub(total, goneSum)
          redis.call('ZREMRANGEBYSCORE', setKey, '-inf', '(' .. markSeq)
          -- A kept sum below a sequence up to the mark covered pruned entries only; one above it loses them.
          local kept = redis.call('HGETALL', belowKey)
          for k = 1, #kept, 2 do
            if tonumber(kept[k]) <= tonumber(markSeq) then redis.call('HDEL', belowKey, kept[k])
            else redis.call('HSET', belowKey, kept[k], dstr(dsub(dparse(kept[k + 1]), goneSum))) end
          end
          if redis.call('ZCARD', setKey) == 0 then
            redis.call('HDEL', totalsKey, signer)
            redis.call('DEL', belowKey)
          else
            redis.call('HSET', totalsKey, signer, dstr(total))
          end
        end
        redis.call('HDEL', marksKey, signer)
        mark = nil
      end
    end
    local nextSeq = signerNext[signer]
    if not mark and nextSeq then
      local first = redis.call('ZRANGE', setKey, 0, 0, 'WITHSCORES')
      if #first > 0 and tonumber(first[2]) < tonumber(nextSeq) then redis.call('HSET', marksKey, signer, nextSeq .. ':' .. now) end
    end
    if signer ~= mySigner then
      if nextSeq then
        local kept = redis.call('HGET', belowKey, nextSeq)
        local settled = {}
        if kept then
          settled = dparse(kept)
        else
          for _, member in ipairs(redis.call('ZRANGEBYSCORE', setKey, '-inf', '(' .. nextSeq)) do
            settled = dadd(settled, dparse(string.sub(member, string.find(member, ':', 1, true) + 1)))
          end
          redis.call('HSET', belowKey, nextSeq, dstr(settled))
        end
        total = dsub(total, settled)
      end
      sum = dadd(sum, total)
    end
  end
  return sum
end
`;

/** What the other instances hold (live leases only) and have recorded against one key, budget or buyer hash. */
const OTHERS = `
local function othersOf(hashKey, me, live)
  local sum = {}
  local fields = redis.call('HGETALL', hashKey)
  for i = 1, #fields, 2 do
    local field = fields[i]
    local kind, instance = string.sub(field, 1, 1), string.sub(field, 3)
    if instance ~= me and (kind == 's' or live[instance]) then sum = dadd(sum, dparse(fields[i + 1])) end
  end
  return sum
end
local function liveInstances(P, now)
  local live = {}
  for _, instance in ipairs(redis.call('ZRANGEBYSCORE', P .. 'leases', '(' .. now, '+inf')) do live[instance] = true end
  return live
end
local function setHeld(P, me, hashKey, value)
  if value == '0' then
    redis.call('HDEL', hashKey, 'r:' .. me)
  else
    redis.call('HSET', hashKey, 'r:' .. me, value)
    redis.call('SADD', P .. 'held:' .. me, hashKey)
  end
end
`;

/**
 * ARGV: prefix, instance, its signer, amount, grace ms, buyer, lease ms, n limits, then per limit (the buyer's first) its hash
 * key, what the local check left ('' when unlimited) and this instance's holding once the call is reserved; then n
 * signers and per signer its address and nextSequence in the snapshot; then the version of the buyer's keys and budgets
 * this instance adopted last (definition-scripts.ts).
 * Returns {'ok'}, {'lease'} (this instance's lease ran out: it must re-publish first), {'stale', version} (the buyer's
 * keys or budgets changed since: adopt them and check again; nothing was reserved) or {'refused', limit, others}.
 */
export const RESERVE_SCRIPT = `${LUA_DECIMAL}${UNSETTLED}${OTHERS}
local P, me, mySigner, amount, grace, buyer = ARGV[1], ARGV[2], ARGV[3], dparse(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
${NOW}
local lease = redis.call('ZSCORE', P .. 'leases', me)
if not lease or tonumber(lease) <= now then return {'lease'} end
-- A call is as good a sign of life as a heartbeat: a busy instance whose timer runs late keeps its lease.
redis.call('ZADD', P .. 'leases', now + tonumber(ARGV[7]), me)
local live = liveInstances(P, now)
local nLimits = tonumber(ARGV[8])
local at = 9 + nLimits * 3
local signerNext = {}
for j = 1, tonumber(ARGV[at]) do signerNext[ARGV[at + 2 * j - 1]] = ARGV[at + 2 * j] end
-- A key revoked or a budget made on another instance binds this call: checked in the same step as the money.
local definitions = redis.call('GET', P .. 'dv:' .. buyer) or '0'
if definitions ~= ARGV[at + 2 * tonumber(ARGV[at]) + 1] then return {'stale', definitions} end
for i = 1, nLimits do
  local hashKey, left = ARGV[6 + 3 * i], ARGV[7 + 3 * i]
  local others = othersOf(hashKey, me, live)
  if i == 1 then others = dadd(others, unsettledOthers(P, buyer, mySigner, signerNext, now, grace)) end
  if left ~= '' and dcmp(dadd(amount, others), dparse(left)) > 0 then return {'refused', tostring(i), dstr(others)} end
end
for i = 1, nLimits do setHeld(P, me, ARGV[6 + 3 * i], ARGV[8 + 3 * i]) end
return {'ok'}
`;

/**
 * One durable record, and the release of the hold that covered it, in one step: the others never see both or
 * neither. ARGV: prefix, instance, signer, buyer, sequence, cost, n pairs (hash key, this instance's absolute spend
 * there), m pairs (hash key, its holding there now). Adding a sequence twice changes nothing: re-publishing is safe.
 */
export const PUBLISH_USAGE_SCRIPT = `${LUA_DECIMAL}${OTHERS}
local P, me, signer, buyer, sequence, cost = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('ZADD', P .. 'u:' .. buyer .. ':' .. signer, 'NX', sequence, sequence .. ':' .. cost) == 1 then
  local totalsKey = P .. 'ut:' .. buyer
  local total = redis.call('HGET', totalsKey, signer) or '0'
  redis.call('HSET', totalsKey, signer, dstr(dadd(dparse(total), dparse(cost))))
  -- A late entry (re-published after a restart) below a sequence whose sum is kept joins that sum.
  local belowKey = P .. 'us:' .. buyer .. ':' .. signer
  local kept = redis.call('HGETALL', belowKey)
  for k = 1, #kept, 2 do
    if tonumber(kept[k]) > tonumber(sequence) then redis.call('HSET', belowKey, kept[k], dstr(dadd(dparse(kept[k + 1]), dparse(cost)))) end
  end
end
local spent = tonumber(ARGV[7])
for j = 1, spent do redis.call('HSET', ARGV[6 + 2 * j], 's:' .. me, ARGV[7 + 2 * j]) end
local at = 8 + 2 * spent
for j = 1, tonumber(ARGV[at] or '0') do setHeld(P, me, ARGV[at + 2 * j - 1], ARGV[at + 2 * j]) end
return 1
`;

/** ARGV: prefix, instance, n pairs (hash key, this instance's holding there now). Absolute values: order-safe, repeatable. */
export const SET_HELD_SCRIPT = `${OTHERS}
local P, me = ARGV[1], ARGV[2]
for j = 1, tonumber(ARGV[3]) do setHeld(P, me, ARGV[2 + 2 * j], ARGV[3 + 2 * j]) end
return 1
`;

/**
 * An instance coming (back) into the fleet: every holding it had is replaced by what it holds now, and its lease
 * starts, in one step, so the others never see it hold less than it does. ARGV: prefix, instance, signer, lease ms,
 * n pairs (hash key, holding).
 */
export const REJOIN_SCRIPT = `${OTHERS}
local P, me, signer, leaseMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
${NOW}
local heldKey = P .. 'held:' .. me
for _, hashKey in ipairs(redis.call('SMEMBERS', heldKey)) do redis.call('HDEL', hashKey, 'r:' .. me) end
redis.call('DEL', heldKey)
for j = 1, tonumber(ARGV[5]) do setHeld(P, me, ARGV[4 + 2 * j], ARGV[5 + 2 * j]) end
redis.call('HSET', P .. 'instances', me, signer)
redis.call('ZADD', P .. 'leases', now + leaseMs, me)
return now
`;

/** The heartbeat: renews this instance's lease if it still runs ({1}), and lists the fleet's signers. */
export const HEARTBEAT_SCRIPT = `
local P, me, leaseMs = ARGV[1], ARGV[2], tonumber(ARGV[3])
${NOW}
local lease = redis.call('ZSCORE', P .. 'leases', me)
local alive = 0
if lease and tonumber(lease) > now then
  redis.call('ZADD', P .. 'leases', now + leaseMs, me)
  alive = 1
end
return {alive, redis.call('HVALS', P .. 'instances')}
`;

/**
 * For GET /v1/balance: what the other instances hold against the buyer (live leases) and served unsettled beyond the
 * snapshot, as the reserve script counts them. ARGV: prefix, instance, its signer, grace ms, buyer, n signers and per
 * signer its address and nextSequence. Returns {held, unsettled}.
 */
export const BUYER_OTHERS_SCRIPT = `${LUA_DECIMAL}${UNSETTLED}${OTHERS}
local P, me, mySigner, grace, buyer = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
${NOW}
local signerNext = {}
for j = 1, tonumber(ARGV[6]) do signerNext[ARGV[6 + 2 * j - 1]] = ARGV[6 + 2 * j] end
local held = othersOf(P .. 'b:' .. buyer, me, liveInstances(P, now))
return {dstr(held), dstr(unsettledOthers(P, buyer, mySigner, signerNext, now, grace))}
`;
