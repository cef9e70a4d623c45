/**
 * `job.log` lines live in a per-job list, outside BullMQ's event stream, and carry no time. To
 * give each line one place and one id in every process, the first process to notice new lines
 * copies each into the event stream as a `runcast:log` entry (text included), and when a job
 * has finished, closes its run with one `runcast:done` entry after its last line. The script is
 * atomic and counts what it copied in the job's own hash (`rc:logs`, `rc:done`, removed with
 * the job), so however many processes run it, and however often ioredis re-sends it, each line
 * is copied once.
 *
 * KEYS[1] the queue's event stream, KEYS[2] the queue's meta hash.
 * ARGV[1] the queue's key prefix (`bull:<queue>:`), ARGV[2] "1" to close finished jobs, ARGV[3..] job ids.
 */
export const CLAIM_SCRIPT = `
local maxEvents = tonumber(redis.call("HGET", KEYS[2], "opts.maxLenEvents") or "10000")
local copied = 0
for i = 3, #ARGV do
  local jobId = ARGV[i]
  local jobKey = ARGV[1] .. jobId
  if redis.call("EXISTS", jobKey) == 1 and not redis.call("HGET", jobKey, "rc:done") then
    local seen = tonumber(redis.call("HGET", jobKey, "rc:logs") or "0")
    local lines = redis.call("LRANGE", jobKey .. ":logs", seen, -1)
    for n, line in ipairs(lines) do
      redis.call("XADD", KEYS[1], "MAXLEN", "~", maxEvents, "*", "event", "runcast:log", "jobId", jobId,
        "index", tostring(seen + n - 1), "line", line)
    end
    if #lines > 0 then
      redis.call("HSET", jobKey, "rc:logs", tostring(seen + #lines))
      copied = copied + #lines
    end
    if ARGV[2] == "1" and redis.call("HGET", jobKey, "finishedOn") then
      redis.call("XADD", KEYS[1], "MAXLEN", "~", maxEvents, "*", "event", "runcast:done", "jobId", jobId)
      redis.call("HSET", jobKey, "rc:done", "1")
    end
  end
end
return copied
`;
