import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, csvList, optionalEnv, parseConfig, port } from "./config.js";

const Env = z.object({
  PORT: port.default(8080),
  URL: optionalEnv(z.string().url()),
  LIST: csvList,
});

describe("parseConfig", () => {
  it("applies defaults and freezes the result", () => {
    const config = parseConfig(Env, {});
    expect(config).toEqual({ PORT: 8080, URL: undefined, LIST: [] });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("lists every violation at once, naming each variable", () => {
    const err = (() => {
      try {
        parseConfig(Env, { PORT: "70000", URL: "not a url" });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const violations = (err as ConfigError).violations;
    expect(violations).toHaveLength(2);
    expect(violations[0]).toMatch(/^PORT: /);
    expect(violations[1]).toMatch(/^URL: /);
    expect((err as ConfigError).message).toContain("PORT: ");
  });

  it("treats an empty variable as unset", () => {
    expect(parseConfig(Env, { URL: "" }).URL).toBeUndefined();
  });

  it("splits, trims and drops empty entries of a comma list", () => {
    expect(parseConfig(Env, { LIST: " a@x.io, ,b@y.io ," }).LIST).toEqual(["a@x.io", "b@y.io"]);
  });
});
