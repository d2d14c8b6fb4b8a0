/**
 * Exact non-negative integer arithmetic on decimal strings, in Lua, for the fleet's scripts.
 *
 * Redis Lua numbers are doubles (exact only below 2^53) and HINCRBY stops at 2^63: a token with 18 decimals
 * passes both within a few thousand units. Money stays integers end to end, so the scripts keep every amount as a
 * decimal string and add, subtract and compare it in base-10^7 limbs (a limb sum never leaves a double's exact range).
 */
export const LUA_DECIMAL = `
local LIMB = 10000000
local function dparse(s)
  local limbs, i = {}, #s
  while i >= 1 do
    local j = i - 6
    if j < 1 then j = 1 end
    limbs[#limbs + 1] = tonumber(string.sub(s, j, i))
    i = j - 1
  end
  return limbs
end
local function dadd(a, b)
  local r, carry = {}, 0
  local n = #a
  if #b > n then n = #b end
  for i = 1, n do
    local v = (a[i] or 0) + (b[i] or 0) + carry
    if v >= LIMB then r[i] = v - LIMB; carry = 1 else r[i] = v; carry = 0 end
  end
  if carry > 0 then r[n + 1] = carry end
  return r
end
-- a - b, never below zero: callers subtract parts of a sum they hold.
local function dsub(a, b)
  local r, borrow = {}, 0
  for i = 1, #a do
    local v = a[i] - (b[i] or 0) - borrow
    if v < 0 then r[i] = v + LIMB; borrow = 1 else r[i] = v; borrow = 0 end
  end
  if borrow > 0 then return {} end
  return r
end
local function dcmp(a, b)
  local na, nb = #a, #b
  while na > 0 and a[na] == 0 do na = na - 1 end
  while nb > 0 and b[nb] == 0 do nb = nb - 1 end
  if na ~= nb then if na < nb then return -1 else return 1 end end
  for i = na, 1, -1 do
    if a[i] ~= b[i] then if a[i] < b[i] then return -1 else return 1 end end
  end
  return 0
end
local function dstr(a)
  local n = #a
  while n > 0 and a[n] == 0 do n = n - 1 end
  if n == 0 then return '0' end
  local parts = { tostring(a[n]) }
  for i = n - 1, 1, -1 do parts[#parts + 1] = string.format('%07d', a[i]) end
  return table.concat(parts)
end
`;
