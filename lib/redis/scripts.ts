import type { Redis } from "ioredis";

/**
 * The Lua scripts of `RedisRunSource`. Each write is one script, so a state change and its
 * envelope are recorded together or not at all, and each write first looks up its write id,
 * so a command ioredis sends again after losing the reply returns the first outcome instead
 * of recording twice.
 *
 * Key layout, under the source's prefix `P`:
 * - `P:log`: the stream of envelopes (fields `t` type, `r` run id, `d` data JSON), trimmed
 *   with `MAXLEN ~`; stream ids are the envelope ids.
 * - `P:run:<id>`: a hash per run. Fields whose name starts with `"` are the state's
 *   top-level fields (name and value both JSON, so values pass through byte for byte and a
 *   merge never decodes them); `state` is the whole state as JSON, rebuilt on each write;
 *   `complete` holds the id of the run's `complete` envelope once it finished.
 * - `P:active`, `P:finished`: sorted sets of run ids, scored by `P:order` (a counter), so
 *   active runs list in creation order and the oldest finished runs are forgotten first.
 * - `P:write:<write id>`: a write's outcome (`<envelope id>\n<data>`), kept for the resend window.
 */

/** Shared by the write scripts. KEYS[1] log, KEYS[2] run, KEYS[3] write id; ARGV[1] resend window (ms), ARGV[2] history size. */
const WRITE_PRELUDE = `
local prior = redis.call("GET", KEYS[3])
if prior then
  local nl = string.find(prior, "\\n", 1, true)
  return {"ok", string.sub(prior, 1, nl - 1), string.sub(prior, nl + 1)}
end

local function emit(kind, runId, data)
  return redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[2], "*", "t", kind, "r", runId, "d", data)
end

local function done(id, data)
  redis.call("SET", KEYS[3], id .. "\\n" .. data, "PX", ARGV[1])
  return {"ok", id, data}
end

-- The run's status as a reason a write is refused, or nil when it is active.
local function refusal()
  if redis.call("EXISTS", KEYS[2]) == 0 then return {"err", "run_not_found", ""} end
  if redis.call("HEXISTS", KEYS[2], "complete") == 1 then
    return {"err", "run_finished", redis.call("HGET", KEYS[2], '"status"') or ""}
  end
  return nil
end

-- ARGV[from] = n, then n (field, value) pairs to set, then fields to delete, up to ARGV[last].
local function apply(from, last)
  local n = tonumber(ARGV[from])
  local i = from + 1
  for _ = 1, n do
    redis.call("HSET", KEYS[2], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  while i <= last do
    redis.call("HDEL", KEYS[2], ARGV[i])
    i = i + 1
  end
end

local FIRST = {'"id"', '"status"', '"completed_units"', '"total_units"'}

-- Rebuilds the state JSON from its fields: the schema's fields first, then the rest by name.
local function rebuild()
  local flat = redis.call("HGETALL", KEYS[2])
  local values, rest = {}, {}
  for i = 1, #flat, 2 do
    local name = flat[i]
    if string.byte(name, 1) == 34 then
      values[name] = flat[i + 1]
      local known = false
      for _, first in ipairs(FIRST) do if first == name then known = true end end
      if not known then rest[#rest + 1] = name end
    end
  end
  table.sort(rest)
  local parts = {}
  for _, name in ipairs(FIRST) do
    if values[name] then parts[#parts + 1] = name .. ":" .. values[name] end
  end
  for _, name in ipairs(rest) do parts[#parts + 1] = name .. ":" .. values[name] end
  local json = "{" .. table.concat(parts, ",") .. "}"
  redis.call("HSET", KEYS[2], "state", json)
  return json
end
`;

/** createRun. KEYS[4] active, KEYS[5] order; ARGV[3] run id, ARGV[4..] fields. */
const CREATE_RUN = `${WRITE_PRELUDE}
if redis.call("EXISTS", KEYS[2]) == 1 then return {"err", "run_exists", ""} end
apply(4, #ARGV)
local json = rebuild()
redis.call("ZADD", KEYS[4], redis.call("INCR", KEYS[5]), ARGV[3])
return done(emit("state", ARGV[3], json), json)
`;

/** recordEvent. ARGV[3] run id, ARGV[4] event JSON. Remembers only the id: the caller has the data. */
const RECORD_EVENT = `${WRITE_PRELUDE}
local refused = refusal()
if refused then return refused end
return done(emit("event", ARGV[3], ARGV[4]), "")
`;

/** updateRun. ARGV[3] run id, ARGV[4..] fields. */
const UPDATE_RUN = `${WRITE_PRELUDE}
local refused = refusal()
if refused then return refused end
apply(4, #ARGV)
local json = rebuild()
return done(emit("state", ARGV[3], json), json)
`;

/**
 * completeRun. KEYS[4] active, KEYS[5] order, KEYS[6] finished; ARGV[3] run id, ARGV[4]
 * most finished runs kept, ARGV[5] run key prefix, ARGV[6..] fields. Forgets the oldest
 * finished runs beyond the limit (their keys are derived from ids, so not declared).
 */
const COMPLETE_RUN = `${WRITE_PRELUDE}
local refused = refusal()
if refused then return refused end
apply(6, #ARGV)
local json = rebuild()
local id = emit("complete", ARGV[3], json)
redis.call("HSET", KEYS[2], "complete", id)
redis.call("ZREM", KEYS[4], ARGV[3])
redis.call("ZADD", KEYS[6], redis.call("INCR", KEYS[5]), ARGV[3])
local excess = redis.call("ZCARD", KEYS[6]) - tonumber(ARGV[4])
if excess > 0 then
  local gone = redis.call("ZPOPMIN", KEYS[6], excess)
  for i = 1, #gone, 2 do redis.call("DEL", ARGV[5] .. gone[i]) end
end
return done(id, json)
`;

/**
 * States and cursor read together. KEYS[1] log, KEYS[2] active; ARGV[1] run key prefix,
 * ARGV[2] run id or "" for every active run. Replies `{cursor or "", state JSON...}`.
 */
const SNAPSHOT = `
local last = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
local out = {last[1] and last[1][1] or ""}
local ids = ARGV[2] ~= "" and {ARGV[2]} or redis.call("ZRANGE", KEYS[2], 0, -1)
for _, runId in ipairs(ids) do
  local state = redis.call("HGET", ARGV[1] .. runId, "state")
  if state then out[#out + 1] = state end
end
return out
`;

/**
 * The entries after ARGV[1], of run ARGV[2] only unless it is "". KEYS[1] log. Replies nil
 * unless ARGV[1] is an entry still in the stream: trimming only removes the oldest entries,
 * so then every later entry is still there; an id that was trimmed away or never existed
 * (another deployment's, a Redis that lost its data) gets nil.
 */
const REPLAY = `
if #redis.call("XRANGE", KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
local entries = redis.call("XRANGE", KEYS[1], "(" .. ARGV[1], "+")
if ARGV[2] == "" then return entries end
local out = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == "r" then
      if fields[i + 1] == ARGV[2] then out[#out + 1] = entry end
      break
    end
  end
end
return out
`;

/** The scripts by name, with their number of keys. */
const SCRIPTS = {
  createRun: { lua: CREATE_RUN, keys: 5 },
  recordEvent: { lua: RECORD_EVENT, keys: 3 },
  updateRun: { lua: UPDATE_RUN, keys: 3 },
  completeRun: { lua: COMPLETE_RUN, keys: 6 },
  snapshot: { lua: SNAPSHOT, keys: 2 },
  replay: { lua: REPLAY, keys: 1 },
} as const;

/** A script's name. */
export type ScriptName = keyof typeof SCRIPTS;

/** Runs one script: its keys, then its arguments. */
export type ScriptRunner = (keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

type DefinedCommand = (...args: (string | number)[]) => Promise<unknown>;

/**
 * Defines the scripts as ioredis commands on `redis`. ioredis sends a script's source the
 * first time it is used on each socket and its SHA after that, so after a reconnect to a
 * restarted Redis (empty script cache) the re-sent writes run in their original order
 * instead of failing with NOSCRIPT one by one.
 */
export function installScripts(redis: Redis): Record<ScriptName, ScriptRunner> {
  const runners = {} as Record<ScriptName, ScriptRunner>;
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const { lua, keys } = SCRIPTS[name];
    const command = `runcast_${name}`;
    redis.defineCommand(command, { lua, numberOfKeys: keys });
    const defined = (redis as unknown as Record<string, DefinedCommand | undefined>)[command];
    if (defined === undefined) throw new Error(`runcast/redis: could not define the ${name} script`);
    runners[name] = (keyList, args) => {
      if (keyList.length !== keys) throw new Error(`the ${name} script takes ${keys} keys, got ${keyList.length}`);
      return defined.call(redis, ...keyList, ...args);
    };
  }
  return runners;
}
