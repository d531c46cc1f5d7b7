import { describe, expect, it } from "vitest";
import { createRegistry, LATENCY_BUCKETS } from "./registry.js";

describe("metrics registry", () => {
  it("renders counters, gauges, histograms and collected metrics in the text format 0.0.4", () => {
    const r = createRegistry({ prefix: "t_" });
    const hits = r.counter<{ route: string; status: number }>({ name: "hits_total", help: "Hits.", labelNames: ["route", "status"] });
    const temp = r.gauge({ name: "temperature", help: "Degrees." });
    const lat = r.histogram<{ route: string }>({ name: "latency_seconds", help: "Latency.", labelNames: ["route"], buckets: [0.1, 1] });
    r.collected({ name: "open", type: "gauge", help: "Open things.", collect: (emit) => emit(7) });
    hits.inc({ route: "/a/{id}", status: 200 });
    hits.inc({ route: "/a/{id}", status: 200 }, 2);
    hits.inc({ route: "/b", status: 404 });
    temp.set(-1.5);
    lat.observe({ route: "/a/{id}" }, 0.05);
    lat.observe({ route: "/a/{id}" }, 0.5);
    lat.observe({ route: "/a/{id}" }, 3);
    expect(r.render()).toBe([
      "# HELP t_hits_total Hits.",
      "# TYPE t_hits_total counter",
      't_hits_total{route="/a/{id}",status="200"} 3',
      't_hits_total{route="/b",status="404"} 1',
      "# HELP t_temperature Degrees.",
      "# TYPE t_temperature gauge",
      "t_temperature -1.5",
      "# HELP t_latency_seconds Latency.",
      "# TYPE t_latency_seconds histogram",
      't_latency_seconds_bucket{route="/a/{id}",le="0.1"} 1',
      't_latency_seconds_bucket{route="/a/{id}",le="1"} 2',
      't_latency_seconds_bucket{route="/a/{id}",le="+Inf"} 3',
      't_latency_seconds_sum{route="/a/{id}"} 3.55',
      't_latency_seconds_count{route="/a/{id}"} 3',
      "# HELP t_open Open things.",
      "# TYPE t_open gauge",
      "t_open 7",
      "",
    ].join("\n"));
  });

  it("prefixes names with mesh_gateway_ and shows an unlabelled counter at 0 before any increment", () => {
    const r = createRegistry();
    r.counter({ name: "dropped_total", help: "Dropped." });
    expect(r.render()).toContain("\nmesh_gateway_dropped_total 0\n");
  });

  it("makes histogram buckets cumulative, an observation on a bound counting in that bucket", () => {
    const r = createRegistry({ prefix: "" });
    const h = r.histogram({ name: "d", help: "D.", buckets: [1, 2, 3] });
    for (const v of [0.5, 1, 2, 2, 2.5, 9]) h.observe(v);
    const buckets = r.render().split("\n").filter((l) => l.startsWith("d_bucket"));
    expect(buckets).toEqual(['d_bucket{le="1"} 2', 'd_bucket{le="2"} 4', 'd_bucket{le="3"} 5', 'd_bucket{le="+Inf"} 6']);
  });

  it("uses latency buckets from 1 ms to 10 s by default", () => {
    const r = createRegistry({ prefix: "" });
    r.histogram({ name: "d", help: "D." }).observe(0.0005);
    const les = [...r.render().matchAll(/le="([^"]+)"/g)].map((m) => m[1]);
    expect(les).toEqual([...LATENCY_BUCKETS.map(String), "+Inf"]);
    expect(les[0]).toBe("0.001");
    expect(les.at(-2)).toBe("10");
  });

  it("escapes backslashes, quotes and newlines in label values, and backslashes and newlines in help", () => {
    const r = createRegistry({ prefix: "" });
    r.counter<{ v: string }>({ name: "x_total", help: "A \\ and a\nnewline.", labelNames: ["v"] }).inc({ v: 'a"b\\c\nd' });
    expect(r.render()).toBe([
      "# HELP x_total A \\\\ and a\\nnewline.",
      "# TYPE x_total counter",
      'x_total{v="a\\"b\\\\c\\nd"} 1',
      "",
    ].join("\n"));
  });

  it("counts label sets beyond the cap in one series labelled other", () => {
    const r = createRegistry({ prefix: "", maxSeriesPerMetric: 2 });
    const c = r.counter<{ path: string; m: string }>({ name: "c_total", help: "C.", labelNames: ["path", "m"] });
    for (const path of ["/1", "/2", "/3", "/4", "/1"]) c.inc({ path, m: "GET" });
    const h = r.histogram<{ path: string }>({ name: "h", help: "H.", labelNames: ["path"], buckets: [1] });
    for (const path of ["/1", "/2", "/3"]) h.observe({ path }, 0.5);
    const samples = r.render().split("\n").filter((l) => l.startsWith("c_total{") || l.startsWith("h_count"));
    expect(samples).toEqual([
      'c_total{path="/1",m="GET"} 2',
      'c_total{path="/2",m="GET"} 1',
      'c_total{path="other",m="other"} 2',
      'h_count{path="/1"} 1',
      'h_count{path="/2"} 1',
      'h_count{path="other"} 1',
    ]);
  });

  it("binds a series once with with(), sharing it with inc()", () => {
    const r = createRegistry({ prefix: "" });
    const c = r.counter<{ tier: string }>({ name: "c_total", help: "C.", labelNames: ["tier"] });
    const user = c.with({ tier: "user" });
    user.inc();
    user.inc(4);
    c.inc({ tier: "user" });
    expect(r.render()).toContain('c_total{tier="user"} 6\n');
  });

  it("emits one sample per collected series, read at every render", () => {
    const r = createRegistry({ prefix: "" });
    let n = 1;
    r.collected<{ cluster: string }>({ name: "inflight", type: "gauge", help: "I.", labelNames: ["cluster"], collect: (emit) => {
      emit(n, { cluster: "auth" });
      emit(n * 2, { cluster: "project" });
    } });
    expect(r.render()).toContain('inflight{cluster="auth"} 1\ninflight{cluster="project"} 2\n');
    n = 5;
    expect(r.render()).toContain('inflight{cluster="auth"} 5\ninflight{cluster="project"} 10\n');
  });

  it("renders gauge increments and special values", () => {
    const r = createRegistry({ prefix: "" });
    const g = r.gauge<{ k: string }>({ name: "g", help: "G.", labelNames: ["k"] });
    g.inc({ k: "a" });
    g.inc({ k: "a" }, -3);
    g.set({ k: "inf" }, Infinity);
    g.set({ k: "nan" }, NaN);
    expect(r.render()).toContain('g{k="a"} -2\ng{k="inf"} +Inf\ng{k="nan"} NaN\n');
  });

  it("refuses a counter decrement", () => {
    const c = createRegistry().counter({ name: "c_total", help: "C." });
    expect(() => c.inc(-1)).toThrow(RangeError);
    expect(() => c.inc(NaN)).toThrow(RangeError);
  });

  it.each([
    ["a duplicate name", (r: ReturnType<typeof createRegistry>) => { r.gauge({ name: "g", help: "" }); r.gauge({ name: "g", help: "" }); }, /declared twice/],
    ["a bad metric name", (r: ReturnType<typeof createRegistry>) => r.gauge({ name: "a-b", help: "" }), /invalid metric name/],
    ["a bad label name", (r: ReturnType<typeof createRegistry>) => r.gauge<{ "a b": string }>({ name: "g", help: "", labelNames: ["a b"] }), /invalid label name/],
    ["the reserved le label", (r: ReturnType<typeof createRegistry>) => r.histogram<{ le: string }>({ name: "h", help: "", labelNames: ["le"] }), /invalid label name/],
    ["a counter not ending in _total", (r: ReturnType<typeof createRegistry>) => r.counter({ name: "c", help: "" }), /must end in _total/],
    ["unsorted buckets", (r: ReturnType<typeof createRegistry>) => r.histogram({ name: "h", help: "", buckets: [1, 1] }), /strictly increasing/],
  ])("refuses %s at declaration", (_name, declare, message) => {
    expect(() => declare(createRegistry())).toThrow(message);
  });

  it("types label sets: a labelled metric needs its labels, an unlabelled one takes none", () => {
    // Checked by tsc (the @ts-expect-error lines fail type checking if they compile); never run.
    const typeChecks = (r: ReturnType<typeof createRegistry>) => {
      const c = r.counter<{ tier: string }>({ name: "c_total", help: "", labelNames: ["tier"] });
      // @ts-expect-error labels are required
      c.inc(1);
      // @ts-expect-error an unlabelled counter takes no labels
      r.counter({ name: "d_total", help: "" }).inc({ tier: "x" });
    };
    expect(typeChecks).toBeTypeOf("function");
  });
});
