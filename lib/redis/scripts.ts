import type { Redis } from "ioredis";

/**
 * The Lua scripts of `RedisRunSource`. Each write is one script, so a state change and its
 * envelope are recorded together or not at all, and each write first looks up its write id,
 * so a command ioredis sends again after losing the reply returns the first outcome instead
 * of recording twice.
 *
 * Key layout, under the source's prefix `P`; every key of one run carries the run's hash tag
 * `{<id>}`, so a run lives in one Redis Cluster slot and the per-run scripts touch one slot:
 * - `P:log`: the global feed, every run's envelopes (fields `t` type, `r` run id, `d` data
 *   JSON), trimmed with `MAXLEN ~` to the history size; its ids are the envelope ids.
 * - `P:origin`: the id of the first entry the global feed ever got. A Redis that lost its
 *   data loses it too, which is how a reader tells history lost from history trimmed.
 * - `P:run:{<id>}`: a hash per run. Fields whose name starts with `"` are the state's
 *   top-level fields (name and value both JSON, so values pass through byte for byte and a
 *   merge never decodes them); `state` is the whole state as JSON, rebuilt on each write;
 *   `first` is the id of the run's first envelope; `complete` the id of its `complete`
 *   envelope once it finished.
 * - `P:log:{<id>}`: the run's log, a stream of the run's envelopes (fields `t`, `d`) under the
 *   same ids as in the global feed, trimmed exactly (`MAXLEN`) to the run log size.
 * - `P:active`, `P:finished`: sorted sets of run ids, scored by `P:order` (a counter), so
 *   active runs list in creation order and the oldest finished runs are forgotten first.
 * - `P:write:{<id>}:<write id>`: a write's outcome (`<envelope id>\n<data>`), kept for the resend window.
 */

/**
 * Shared by the write scripts. KEYS[1] global feed, KEYS[2] origin, KEYS[3] run hash, KEYS[4]
 * run log, KEYS[5] write id; ARGV[1] resend window (ms), ARGV[2] history size, ARGV[3] run
 * log size, ARGV[4] run id.
 */
const WRITE_PRELUDE = `
local prior = redis.call("GET", KEYS[5])
if prior then
  local nl = string.find(prior, "\\n", 1, true)
  return {"ok", string.sub(prior, 1, nl - 1), string.sub(prior, nl + 1)}
end

-- Appends to the global feed, then to the run's log under the same id.
local function emit(kind, data)
  local id = redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[2], "*", "t", kind, "r", ARGV[4], "d", data)
  redis.call("XADD", KEYS[4], "MAXLEN", ARGV[3], id, "t", kind, "d", data)
  redis.call("SET", KEYS[2], id, "NX")
  return id
end

local function done(id, data)
  redis.call("SET", KEYS[5], id .. "\\n" .. data, "PX", ARGV[1])
  return {"ok", id, data}
end

-- The run's status as a reason a write is refused, or nil when it is active.
local function refusal()
  if redis.call("EXISTS", KEYS[3]) == 0 then return {"err", "run_not_found", ""} end
  if redis.call("HEXISTS", KEYS[3], "complete") == 1 then
    return {"err", "run_finished", redis.call("HGET", KEYS[3], '"status"') or ""}
  end
  return nil
end

-- ARGV[from] = n, then n (field, value) pairs to set, then fields to delete, up to ARGV[last].
local function apply(from, last)
  local n = tonumber(ARGV[from])
  local i = from + 1
  for _ = 1, n do
    redis.call("HSET", KEYS[3], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  while i <= last do
    redis.call("HDEL", KEYS[3], ARGV[i])
    i = i + 1
  end
end

local FIRST = {'"id"', '"status"', '"completed_units"', '"total_units"'}

-- Rebuilds the state JSON from its fields: the schema's fields first, then the rest by name.
local function rebuild()
  local flat = redis.call("HGETALL", KEYS[3])
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
  redis.call("HSET", KEYS[3], "state", json)
  return json
end
`;

/**
 * createRun. KEYS[6] active, KEYS[7] order, KEYS[8] finished; ARGV[5..] fields. A run id
 * reused after its earlier run expired leaves the finished set, so forgetting old finished
 * runs never reaches the new one.
 */
const CREATE_RUN = `${WRITE_PRELUDE}
if redis.call("EXISTS", KEYS[3]) == 1 then return {"err", "run_exists", ""} end
redis.call("DEL", KEYS[4])
apply(5, #ARGV)
local json = rebuild()
redis.call("ZREM", KEYS[8], ARGV[4])
redis.call("ZADD", KEYS[6], redis.call("INCR", KEYS[7]), ARGV[4])
local id = emit("state", json)
redis.call("HSET", KEYS[3], "first", id)
return done(id, json)
`;

/** recordEvent. ARGV[5] event JSON. Remembers only the id: the caller has the data. */
const RECORD_EVENT = `${WRITE_PRELUDE}
local refused = refusal()
if refused then return refused end
return done(emit("event", ARGV[5]), "")
`;

/** updateRun. ARGV[5..] fields. */
const UPDATE_RUN = `${WRITE_PRELUDE}
local refused = refusal()
if refused then return refused end
apply(5, #ARGV)
local json = rebuild()
return done(emit("state", json), json)
`;

/**
 * completeRun. KEYS[6] active, KEYS[7] order, KEYS[8] finished; ARGV[5] most finished runs
 * kept, ARGV[6] run hash key prefix (`P:run:{`), ARGV[7] run log key prefix (`P:log:{`),
 * ARGV[8] finished run TTL in ms ("0": none), ARGV[9..] fields. Sets the TTL on both keys of
 * the run, drops finished runs that already expired from the head of the finished set, and
 * forgets the oldest finished runs beyond the limit (their keys are derived from ids, so not
 * declared: one reason Redis Cluster is not supported).
 */
const COMPLETE_RUN = `${WRITE_PRELUDE}
local refused = refusal()
if refused then return refused end
apply(9, #ARGV)
local json = rebuild()
local id = emit("complete", json)
redis.call("HSET", KEYS[3], "complete", id)
if ARGV[8] ~= "0" then
  redis.call("PEXPIRE", KEYS[3], ARGV[8])
  redis.call("PEXPIRE", KEYS[4], ARGV[8])
end
redis.call("ZREM", KEYS[6], ARGV[4])
redis.call("ZADD", KEYS[8], redis.call("INCR", KEYS[7]), ARGV[4])
while true do
  local head = redis.call("ZRANGE", KEYS[8], 0, 0)
  if #head == 0 or redis.call("EXISTS", ARGV[6] .. head[1] .. "}") == 1 then break end
  redis.call("ZREM", KEYS[8], head[1])
end
local excess = redis.call("ZCARD", KEYS[8]) - tonumber(ARGV[5])
if excess > 0 then
  local gone = redis.call("ZPOPMIN", KEYS[8], excess)
  for i = 1, #gone, 2 do
    redis.call("DEL", ARGV[6] .. gone[i] .. "}", ARGV[7] .. gone[i] .. "}")
  end
end
return done(id, json)
`;

/**
 * One run's state and cursor read together. KEYS[1] run hash, KEYS[2] run log. Replies
 * `{state JSON, id of the run's newest envelope}`, or nil for an unknown run.
 */
const SNAPSHOT_RUN = `
local state = redis.call("HGET", KEYS[1], "state")
if not state then return false end
local last = redis.call("XREVRANGE", KEYS[2], "+", "-", "COUNT", 1)
return {state, last[1] and last[1][1] or ""}
`;

/**
 * Every active run's state and the global cursor read together. KEYS[1] global feed, KEYS[2]
 * active; ARGV[1] run hash key prefix. Replies `{cursor or "", state JSON...}`.
 */
const SNAPSHOT_ALL = `
local last = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
local out = {last[1] and last[1][1] or ""}
for _, runId in ipairs(redis.call("ZRANGE", KEYS[2], 0, -1)) do
  local state = redis.call("HGET", ARGV[1] .. runId .. "}", "state")
  if state then out[#out + 1] = state end
end
return out
`;

/**
 * A page of one run's log, touching that run's keys only. KEYS[1] run hash, KEYS[2] run log;
 * ARGV[1] the id to read after ("" from the start), ARGV[2] the page size. Replies nil for an
 * unknown run; `{"page", entries}` when the position is served (from the start: only while
 * the log still begins with the run's first envelope; after an id: only when that id is in
 * the log); otherwise `{"gap", first id, oldest retained id}`, for the caller to tell
 * trimmed from unknown. Reads at most the page plus two entries.
 */
const READ_RUN_LOG = `
local first = redis.call("HGET", KEYS[1], "first")
if not first then return false end
if ARGV[1] ~= "" and #redis.call("XRANGE", KEYS[2], ARGV[1], ARGV[1]) == 1 then
  return {"page", redis.call("XRANGE", KEYS[2], "(" .. ARGV[1], "+", "COUNT", ARGV[2])}
end
local oldest = redis.call("XRANGE", KEYS[2], "-", "+", "COUNT", 1)
local oldestId = oldest[1] and oldest[1][1] or ""
if ARGV[1] == "" and oldestId == first then
  return {"page", redis.call("XRANGE", KEYS[2], "-", "+", "COUNT", ARGV[2])}
end
return {"gap", first, oldestId}
`;

/**
 * A page of the global feed. KEYS[1] global feed, KEYS[2] origin; ARGV[1] the id to read after
 * ("" from its oldest retained entry), ARGV[2] the page size. Replies `{"page", entries}` when
 * served, else `{"gap", origin or "", oldest retained id or ""}`.
 */
const READ_FEED = `
if ARGV[1] == "" then
  return {"page", redis.call("XRANGE", KEYS[1], "-", "+", "COUNT", ARGV[2])}
end
if #redis.call("XRANGE", KEYS[1], ARGV[1], ARGV[1]) == 1 then
  return {"page", redis.call("XRANGE", KEYS[1], "(" .. ARGV[1], "+", "COUNT", ARGV[2])}
end
local oldest = redis.call("XRANGE", KEYS[1], "-", "+", "COUNT", 1)
return {"gap", redis.call("GET", KEYS[2]) or "", oldest[1] and oldest[1][1] or ""}
`;

/**
 * What the live reader needs to know of the global feed, read together. KEYS[1] global feed,
 * KEYS[2] origin; ARGV[1] an id ("" for none). Replies `{newest id or "", origin or "",
 * oldest id or "", 1 when ARGV[1] is an entry of the feed else 0}`.
 */
const FEED_STATUS = `
local newest = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
local oldest = redis.call("XRANGE", KEYS[1], "-", "+", "COUNT", 1)
local held = 0
if ARGV[1] ~= "" and #redis.call("XRANGE", KEYS[1], ARGV[1], ARGV[1]) == 1 then held = 1 end
return {newest[1] and newest[1][1] or "", redis.call("GET", KEYS[2]) or "", oldest[1] and oldest[1][1] or "", held}
`;

/** The scripts by name, with their number of keys. */
const SCRIPTS = {
  createRun: { lua: CREATE_RUN, keys: 8 },
  recordEvent: { lua: RECORD_EVENT, keys: 5 },
  updateRun: { lua: UPDATE_RUN, keys: 5 },
  completeRun: { lua: COMPLETE_RUN, keys: 8 },
  snapshotRun: { lua: SNAPSHOT_RUN, keys: 2 },
  snapshotAll: { lua: SNAPSHOT_ALL, keys: 2 },
  readRunLog: { lua: READ_RUN_LOG, keys: 2 },
  readFeed: { lua: READ_FEED, keys: 2 },
  feedStatus: { lua: FEED_STATUS, keys: 2 },
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
