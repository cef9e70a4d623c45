/**
 * A parser of the Prometheus text exposition format (version 0.0.4), written from its
 * specification: `# HELP` and `# TYPE` lines, then samples `name{label="value",...} value
 * [timestamp]`, label values escaping `\\`, `\"` and `\n`, values as Go floats (`NaN`,
 * `+Inf`, `-Inf`, in any case). Throws on any line it cannot read, so a malformed exposition fails a test.
 */

/** One metric family: its type, help, and samples. */
export interface MetricFamily {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/** A value as Go's `strconv.ParseFloat` reads it, which spells NaN and infinities in any case (prom-client writes `Nan`). */
function parseValue(text: string, line: string): number {
  if (/^nan$/i.test(text)) return Number.NaN;
  if (/^\+?inf(inity)?$/i.test(text)) return Number.POSITIVE_INFINITY;
  if (/^-inf(inity)?$/i.test(text)) return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value in ${JSON.stringify(line)}`);
  return Number(text);
}

function parseSample(line: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) throw new Error(`bad metric name in ${JSON.stringify(line)}`);
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    rest = rest.slice(1);
    while (!rest.startsWith("}")) {
      const label = LABEL_NAME.exec(rest)?.[0];
      if (label === undefined || rest[label.length] !== "=" || rest[label.length + 1] !== '"') {
        throw new Error(`bad label in ${JSON.stringify(line)}`);
      }
      rest = rest.slice(label.length + 2);
      let value = "";
      for (;;) {
        const c = rest[0];
        if (c === undefined) throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
        rest = rest.slice(1);
        if (c === '"') break;
        if (c === "\\") {
          const escaped = rest[0];
          rest = rest.slice(1);
          if (escaped === "n") value += "\n";
          else if (escaped === "\\" || escaped === '"') value += escaped;
          else throw new Error(`bad escape in ${JSON.stringify(line)}`);
        } else value += c;
      }
      if (label in labels) throw new Error(`repeated label ${label} in ${JSON.stringify(line)}`);
      labels[label] = value;
      if (rest.startsWith(",")) rest = rest.slice(1);
      else if (!rest.startsWith("}")) throw new Error(`bad label separator in ${JSON.stringify(line)}`);
    }
    rest = rest.slice(1);
  }
  const fields = rest.trim().split(/[ \t]+/);
  if (!/^[ \t]/.test(rest) || fields.length < 1 || fields.length > 2) {
    throw new Error(`bad sample ${JSON.stringify(line)}`);
  }
  if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1]))
    throw new Error(`bad timestamp in ${JSON.stringify(line)}`);
  return { name, labels, value: parseValue(fields[0] ?? "", line) };
}

/** The family a sample name belongs to: itself, or a histogram's/summary's `_bucket`, `_sum`, `_count`. */
function familyOf(families: Map<string, MetricFamily>, sample: string): MetricFamily | undefined {
  const own = families.get(sample);
  if (own !== undefined) return own;
  const base = /^(.*)_(bucket|sum|count)$/.exec(sample)?.[1];
  const family = base === undefined ? undefined : families.get(base);
  return family !== undefined && (family.type === "histogram" || family.type === "summary") ? family : undefined;
}

/** Parses an exposition into its families by name. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let found = families.get(name);
    if (found === undefined) {
      found = { name, type: "untyped", help: "", samples: [] };
      families.set(name, found);
    }
    return found;
  };
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const meta = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(line);
      if (meta === null) continue; // a plain comment
      const [, kind, name, rest = ""] = meta;
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) throw new Error(`bad type in ${JSON.stringify(line)}`);
        family(name as string).type = rest;
      } else family(name as string).help = rest.replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
      continue;
    }
    const sample = parseSample(line);
    const owner = familyOf(families, sample.name);
    if (owner === undefined) throw new Error(`sample ${sample.name} before its # TYPE line`);
    owner.samples.push(sample);
  }
  return families;
}

/** The value of the one sample of `name` with exactly these labels; throws when there is none. */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const owner = familyOf(families, name);
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const found = owner?.samples.find(
    (sample) => sample.name === name && JSON.stringify(Object.entries(sample.labels).sort()) === wanted,
  );
  if (found === undefined) throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
  return found.value;
}
