/** Tables of the storm phase. */
import type { StormTrial } from "./storm";

function seconds(ms: number): string {
  return Number.isNaN(ms) ? "never" : `${(ms / 1000).toFixed(2)} s`;
}

function micros(us: number): string {
  return Number.isNaN(us) ? "-" : us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`;
}

/** Whether the storm's router served resumes from its memory of recent frames (`resumeCacheBytes`). */
function onOff(t: StormTrial): string {
  return t.resumeCache ? "on" : "off";
}

/** Each storm: time until live again against a fresh connect, Redis time per client, exactly once. */
export function stormTable(trials: readonly StormTrial[]): string {
  const lines = [
    "| clients | history/run | missed/client | resume cache | connect fresh: all live | storm: all live (p50) | storm / fresh (target ≤ 2x) | Redis per fresh connect | Redis per resume (from medians) | Redis CPU per resume (less steady work) | per missed event | server CPU per resume | slowest write in the storm | every event once |",
    "|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
  ];
  for (const t of trials) {
    lines.push(
      `| ${t.clients} | ${t.history} | ${t.resume.behindMean.toFixed(0)} | ${onOff(t)} | ${seconds(t.fresh.liveMs)} | ` +
        `${seconds(t.resume.liveMs)} (${seconds(t.resume.liveP50Ms)}) | ${Number.isNaN(t.liveRatio) ? "-" : `${t.liveRatio.toFixed(2)}x`} | ` +
        `${micros(t.redisPerFreshUs)} | ${micros(t.redisPerResumeUs)} (${micros(t.redisPerResumeTypicalUs)}) | ${micros(t.redisCpuPerResumeUs)} (${micros(t.redisCpuNetPerResumeUs)}) | ${t.redisPerMissedUs.toFixed(1)} µs | ${t.cpuPerResumeMs.toFixed(2)} ms | ` +
        `${t.maxWriteMs.storm.toFixed(0)} ms | ${t.exact ? "yes" : "NO"} |`,
    );
  }
  return lines.join("\n");
}

/** What Redis ran for the serving process during each storm, per command or script, per resume. */
export function stormCommands(trials: readonly StormTrial[]): string {
  const lines = [
    "| clients | history/run | missed/run | resume cache | command | calls per resume | µs per call (median) | µs per resume |",
    "|---:|---:|---:|:---:|---|---:|---:|---:|",
  ];
  for (const t of trials) {
    for (const item of t.redis.storm.items) {
      if (item.connection !== "commands") continue;
      lines.push(
        `| ${t.clients} | ${t.history} | ${t.missed} | ${onOff(t)} | \`${item.command}\` | ${(item.calls / t.clients).toFixed(2)} | ` +
          `${(item.usec / item.calls).toFixed(1)} (${item.p50Usec.toFixed(0)}) | ${(item.usec / t.clients).toFixed(1)} |`,
      );
    }
  }
  return lines.join("\n");
}

/**
 * Per client count: Redis time per resume against the storm with half the history (same
 * events missed) and against the storm with half the events missed (same history). Resume
 * work that follows what was missed, and only that, shows 1.00x and 2.00x. Only storms whose
 * resumes read Redis (resume cache off): with it on, they read nothing.
 */
export function stormDoubling(trials: readonly StormTrial[]): string {
  const lines = [
    "| clients | history/run | missed/run | resume cache | Redis per resume, from medians | vs half the history | vs half the missed | Redis CPU per resume, less steady work | vs half the history | vs half the missed |",
    "|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|",
  ];
  const ratio = (a: number, b: number | undefined): string => (b === undefined ? "" : `${(a / b).toFixed(2)}x`);
  for (const t of trials) {
    if (t.resumeCache) continue;
    const same = (x: StormTrial): boolean =>
      x.clients === t.clients && x.rep === t.rep && x.resumeCache === t.resumeCache;
    const halfHistory = trials.find((x) => same(x) && x.missed === t.missed && x.history * 2 === t.history);
    const halfMissed = trials.find((x) => same(x) && x.history === t.history && x.missed * 2 === t.missed);
    lines.push(
      `| ${t.clients} | ${t.history} | ${t.missed} | ${onOff(t)} | ${micros(t.redisPerResumeTypicalUs)} | ` +
        `${ratio(t.redisPerResumeTypicalUs, halfHistory?.redisPerResumeTypicalUs)} | ` +
        `${ratio(t.redisPerResumeTypicalUs, halfMissed?.redisPerResumeTypicalUs)} | ` +
        `${micros(t.redisCpuNetPerResumeUs)} | ${ratio(t.redisCpuNetPerResumeUs, halfHistory?.redisCpuNetPerResumeUs)} | ` +
        `${ratio(t.redisCpuNetPerResumeUs, halfMissed?.redisCpuNetPerResumeUs)} |`,
    );
  }
  return lines.join("\n");
}
