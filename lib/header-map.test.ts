import { describe, expect, it } from "vitest";
import { HeaderMap } from "./header-map.js";

type Op = readonly ["set" | "append", string, string] | readonly ["delete", string];

/** Applies the same operations to a Fetch Headers and a HeaderMap, for side-by-side comparison. */
function both(ops: readonly Op[], init?: Record<string, string> | [string, string][]) {
  const fetch = new Headers(init);
  const ours = new HeaderMap(init);
  for (const op of ops) {
    for (const h of [fetch, ours] as Headers[]) {
      if (op[0] === "delete") h.delete(op[1]);
      else h[op[0]](op[1], op[2]);
    }
  }
  return { fetch, ours };
}

const entries = (h: Headers) => [...h];
const viaForEach = (h: Headers) => {
  const out: [string, string][] = [];
  h.forEach((v, k) => out.push([k, v]));
  return out;
};

describe("HeaderMap behaves as Fetch Headers", () => {
  const cases: { name: string; ops: Op[]; init?: Record<string, string> | [string, string][] }[] = [
    { name: "case-insensitive names, lower-case on the way out", ops: [["set", "X-Request-Id", "a"], ["set", "Content-Type", "text/plain"]] },
    { name: "set replaces", ops: [["set", "x-a", "1"], ["set", "X-A", "2"]] },
    { name: "append joins with a comma and a space", ops: [["append", "accept", "a"], ["append", "Accept", "b"]] },
    { name: "values lose their leading and trailing whitespace", ops: [["set", "x-a", "  v \t"], ["append", "x-b", "\r\nw "]] },
    { name: "delete of a present and an absent name", ops: [["set", "x-a", "1"], ["delete", "X-A"], ["delete", "x-none"]] },
    { name: "iteration sorted by name", ops: [["set", "zeta", "1"], ["set", "alpha", "2"], ["set", "mid", "3"]] },
    { name: "set-cookie values stay apart", ops: [["append", "set-cookie", "a=1"], ["append", "Set-Cookie", "b=2"], ["set", "x", "y"]] },
    { name: "set of set-cookie replaces all of them", ops: [["append", "set-cookie", "a=1"], ["append", "set-cookie", "b=2"], ["set", "set-cookie", "c=3"]] },
    { name: "from a record", ops: [["append", "x-a", "2"]], init: { "X-A": "1", b: "2" } },
    { name: "from pairs, repeated names joined", ops: [], init: [["x-a", "1"], ["X-A", "2"], ["set-cookie", "s=1"], ["set-cookie", "t=2"]] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { fetch, ours } = both(c.ops, c.init);
      expect(entries(ours)).toEqual(entries(fetch));
      expect(viaForEach(ours)).toEqual(viaForEach(fetch));
      expect([...ours.keys()]).toEqual([...fetch.keys()]);
      expect([...ours.values()]).toEqual([...fetch.values()]);
      expect(ours.getSetCookie()).toEqual(fetch.getSetCookie());
      for (const name of ["x-a", "X-A", "x-b", "accept", "set-cookie", "zeta", "none", "x-request-id"]) {
        expect(ours.get(name), name).toBe(fetch.get(name));
        expect(ours.has(name), name).toBe(fetch.has(name));
      }
    });
  }

  it("copies a Fetch Headers and is accepted where HeadersInit is", () => {
    const source = new Headers({ a: "1", "set-cookie": "s=1" });
    source.append("set-cookie", "t=2");
    const ours = new HeaderMap(source);
    expect(entries(ours)).toEqual(entries(source));
    expect(entries(new Headers(ours))).toEqual(entries(source));
  });

  it("reads Node's incoming header object: pseudo-headers left out, repeated values joined", () => {
    const h = HeaderMap.fromIncoming({ ":path": "/x", host: "h", accept: ["a", "b"], "set-cookie": ["s=1", "t=2"], none: undefined });
    expect(entries(h)).toEqual([["accept", "a, b"], ["host", "h"], ["set-cookie", "s=1"], ["set-cookie", "t=2"]]);
  });

  it("gives Node's outgoing header object: each name once, set-cookie as a list", () => {
    const h = new HeaderMap({ "X-Request-Id": "r" });
    h.append("set-cookie", "s=1");
    h.append("set-cookie", "t=2");
    h.append("vary", "Origin");
    h.append("vary", "Accept");
    expect(h.toRecord()).toEqual({ "x-request-id": "r", vary: "Origin, Accept", "set-cookie": ["s=1", "t=2"] });
  });
});
