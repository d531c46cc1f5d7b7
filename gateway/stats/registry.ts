/** Label values of one series, by label name. Values are rendered with `String()`. */
export type Labels = Readonly<Record<string, string | number>>;
type NoLabels = Record<never, never>;
/** `inc(by?)` without labels, `inc(labels, by?)` with. */
type Args<V extends Labels, T extends unknown[]> = keyof V extends never ? T : [labels: V, ...T];

export interface Counter<V extends Labels = NoLabels> {
  /** Adds `by` (default 1; negative throws RangeError: counters only go up) to the series of the labels. */
  inc(...args: Args<V, [by?: number]>): void;
  /** The series of `labels`, looked up once for a hot path. */
  with(labels: V): { inc(by?: number): void };
}

export interface Gauge<V extends Labels = NoLabels> {
  set(...args: Args<V, [value: number]>): void;
  inc(...args: Args<V, [by?: number]>): void;
}

export interface Histogram<V extends Labels = NoLabels> {
  /** Records one observation (seconds, for latencies). */
  observe(...args: Args<V, [value: number]>): void;
}

export interface MetricDef<V extends Labels> {
  /** Without the registry's prefix; counters end in `_total`. */
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly (keyof V & string)[];
}

/** A metric whose values are read when rendered: `emit(value, labels)` once per series. */
export interface CollectedDef<V extends Labels> extends MetricDef<V> {
  readonly type: "counter" | "gauge";
  readonly collect: (emit: (value: number, ...labels: Args<V, []>) => void) => void;
}

export interface Registry {
  counter<V extends Labels = NoLabels>(def: MetricDef<V>): Counter<V>;
  gauge<V extends Labels = NoLabels>(def: MetricDef<V>): Gauge<V>;
  /** `buckets`: upper bounds, strictly increasing; default LATENCY_BUCKETS. */
  histogram<V extends Labels = NoLabels>(def: MetricDef<V> & { readonly buckets?: readonly number[] }): Histogram<V>;
  collected<V extends Labels = NoLabels>(def: CollectedDef<V>): void;
  /** Every metric in registration order, in the Prometheus text exposition format 0.0.4. */
  render(): string;
}

export interface RegistryOptions {
  /** Prepended to every name. Default `mesh_gateway_`. */
  readonly prefix?: string;
  /**
   * Distinct label sets kept per metric (default 1000); any further one is
   * counted in a single series whose every label is `other`, so a bug that
   * labels by something unbounded cannot exhaust memory.
   */
  readonly maxSeriesPerMetric?: number;
}

/** Latency buckets in seconds, 1 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The content type of `render()`'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  samples(out: string[]): void;
}

interface Declared {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly maxSeries: number;
}

/**
 * A small Prometheus metrics registry with no dependency: counters, gauges
 * and fixed-bucket histograms with labels, plus metrics read at render time.
 * Names and label names are checked when a metric is declared (a bad or
 * duplicate one throws: declarations run at startup).
 */
export function createRegistry(opts: RegistryOptions = {}): Registry {
  const prefix = opts.prefix ?? "mesh_gateway_";
  const maxSeries = opts.maxSeriesPerMetric ?? 1000;
  const families: Family[] = [];
  const declare = <V extends Labels, T>(def: MetricDef<V>, type: Family["type"], build: (d: Declared) => { family: Family; api: T }): T => {
    const name = prefix + def.name;
    const labelNames = def.labelNames ?? [];
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    if (families.some((f) => f.name === name)) throw new Error(`metric ${name} is declared twice`);
    if (type === "counter" && !name.endsWith("_total")) throw new Error(`counter ${name} must end in _total`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || l === "le") throw new Error(`invalid label name ${l} on ${name}`);
    }
    const { family, api } = build({ name, help: def.help, labelNames, maxSeries });
    families.push(family);
    return api;
  };
  return {
    // The implementations take untyped arguments; the declared label type is the caller's contract.
    counter: <V extends Labels>(def: MetricDef<V>) => declare(def, "counter", counterFamily) as unknown as Counter<V>,
    gauge: <V extends Labels>(def: MetricDef<V>) => declare(def, "gauge", gaugeFamily) as unknown as Gauge<V>,
    histogram: <V extends Labels>(def: MetricDef<V> & { readonly buckets?: readonly number[] }) =>
      declare(def, "histogram", (d) => histogramFamily(d, def.buckets ?? LATENCY_BUCKETS)) as unknown as Histogram<V>,
    collected: (def) => declare(def, def.type, (d) => collectedFamily(d, def)),
    render() {
      const out: string[] = [];
      for (const f of families) {
        out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${f.name} ${f.type}`);
        f.samples(out);
      }
      return out.length === 0 ? "" : `${out.join("\n")}\n`;
    },
  };
}

/** Splits `(labels, x)` or `(x)` call arguments by whether the metric has labels. */
function labelsAndValue(d: Declared, args: unknown[]): [Labels | undefined, number | undefined] {
  return d.labelNames.length === 0 ? [undefined, args[0] as number | undefined] : [args[0] as Labels, args[1] as number | undefined];
}

function counterFamily(d: Declared): { family: Family; api: { inc(...args: unknown[]): void; with(labels: Labels): { inc(by?: number): void } } } {
  const series = createSeries(d.labelNames, d.maxSeries, () => ({ value: 0 }));
  const bump = (s: { value: number }, by = 1) => {
    if (!(by >= 0)) throw new RangeError(`${d.name}: a counter cannot change by ${by}`);
    s.value += by;
  };
  return {
    family: { ...d, type: "counter", samples: (out) => series.each((l, s) => out.push(`${d.name}${l} ${num(s.value)}`)) },
    api: {
      inc: (...args: unknown[]) => {
        const [labels, by] = labelsAndValue(d, args);
        bump(series.get(labels), by);
      },
      with(labels) {
        const s = series.get(labels);
        return { inc: (by) => bump(s, by) };
      },
    },
  };
}

function gaugeFamily(d: Declared): { family: Family; api: { set(...args: unknown[]): void; inc(...args: unknown[]): void } } {
  const series = createSeries(d.labelNames, d.maxSeries, () => ({ value: 0 }));
  return {
    family: { ...d, type: "gauge", samples: (out) => series.each((l, s) => out.push(`${d.name}${l} ${num(s.value)}`)) },
    api: {
      set: (...args: unknown[]) => {
        const [labels, value] = labelsAndValue(d, args);
        series.get(labels).value = value ?? 0;
      },
      inc: (...args: unknown[]) => {
        const [labels, by] = labelsAndValue(d, args);
        series.get(labels).value += by ?? 1;
      },
    },
  };
}

function histogramFamily(d: Declared, buckets: readonly number[]): { family: Family; api: { observe(...args: unknown[]): void } } {
  if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
    throw new Error(`${d.name}: buckets must be finite and strictly increasing`);
  }
  const les = buckets.map(num);
  // Per-bucket counts, made cumulative when rendered; +Inf is the total count.
  const series = createSeries(d.labelNames, d.maxSeries, () => ({ counts: new Array<number>(buckets.length).fill(0), sum: 0, count: 0 }));
  const samples = (out: string[]) => series.each((l, s, values) => {
    let cumulative = 0;
    for (let i = 0; i < les.length; i++) {
      cumulative += s.counts[i]!;
      out.push(`${d.name}_bucket${labelText(d.labelNames, values, les[i])} ${cumulative}`);
    }
    out.push(`${d.name}_bucket${labelText(d.labelNames, values, "+Inf")} ${s.count}`, `${d.name}_sum${l} ${num(s.sum)}`, `${d.name}_count${l} ${s.count}`);
  });
  return {
    family: { ...d, type: "histogram", samples },
    api: {
      observe(...args: unknown[]) {
        const [labels, v] = labelsAndValue(d, args);
        if (v === undefined || Number.isNaN(v)) return;
        const s = series.get(labels);
        const i = buckets.findIndex((b) => v <= b);
        if (i >= 0) s.counts[i]!++;
        s.sum += v;
        s.count++;
      },
    },
  };
}

function collectedFamily<V extends Labels>(d: Declared, def: CollectedDef<V>): { family: Family; api: void } {
  const samples = (out: string[]) => def.collect((value, ...rest) => {
    const labels = rest[0] as Labels | undefined;
    out.push(`${d.name}${labelText(d.labelNames, d.labelNames.map((n) => String(labels?.[n] ?? "")))} ${num(value)}`);
  });
  return { family: { ...d, type: def.type, samples }, api: undefined };
}

/** The series of one metric, keyed by label values, capped at `max` plus the `other` overflow series. */
function createSeries<S>(labelNames: readonly string[], max: number, init: () => S) {
  const series = new Map<string, { values: readonly string[]; text: string; state: S }>();
  const other = labelNames.map(() => "other");
  const entry = (values: readonly string[], key: string) => {
    const s = { values, text: labelText(labelNames, values), state: init() };
    series.set(key, s);
    return s;
  };
  if (labelNames.length === 0) entry([], "");
  return {
    get(labels: Labels | undefined): S {
      const values = labelNames.map((n) => String(labels?.[n] ?? ""));
      // NUL cannot occur in HTTP header values or route templates, so keys are unambiguous.
      const key = values.join("\0");
      const hit = series.get(key);
      if (hit) return hit.state;
      if (series.size < max) return entry(values, key).state;
      const otherKey = other.join("\0");
      return (series.get(otherKey) ?? entry(other, otherKey)).state;
    },
    each(f: (labels: string, state: S, values: readonly string[]) => void): void {
      for (const s of series.values()) f(s.text, s.state, s.values);
    },
  };
}

/** `{a="x",b="y"}` with values escaped per the text format (`\\`, `\"`, `\n`), or "" without labels. */
function labelText(names: readonly string[], values: readonly string[], le?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
  if (le !== undefined) parts.push(`le="${le}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n");
}

/** A sample value as the text format spells it (`+Inf`, `-Inf`, `NaN`, else JS's shortest round-trip form). */
function num(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}
