import { describe, expect, it } from "vitest";
import { breakingChanges } from "./compatibility.js";
import { GREETER, schemaOf, Type, type FieldSpec, type FileSpec, type MethodSpec } from "./test-support.js";

const base = schemaOf(GREETER);
const withMessages = (messages: Record<string, readonly FieldSpec[]>): FileSpec => ({ ...GREETER, messages: { ...GREETER.messages, ...messages } });
const withMethods = (edit: (m: MethodSpec) => MethodSpec, extra: MethodSpec[] = []): FileSpec => ({ ...GREETER, methods: [...GREETER.methods.map(edit), ...extra] });
const changes = (spec: FileSpec, from = base) => breakingChanges(from.bindings, schemaOf(spec).bindings);

describe("breakingChanges: routes", () => {
  it("finds none between a schema and itself", () => {
    expect(changes(GREETER)).toEqual([]);
  });

  it("accepts new methods, new routes and renamed path variables", () => {
    const spec = withMethods((m) => (m.name === "SayHello" ? { ...m, http: { pattern: { case: "get", value: "/api/v1/greeter/{language}" } } } : m), [
      { name: "SayGoodbye", input: "SayHelloRequest", output: "SayHelloResponse", http: { pattern: { case: "get", value: "/api/v1/greeter/{name}:goodbye" } } },
    ]);
    expect(changes(spec)).toEqual([]);
  });

  it.each<[string, FileSpec, string]>([
    ["a route removed with its method", { ...GREETER, methods: GREETER.methods.slice(0, 1) },
      "POST /api/v1/greetings (demo.greeter.v1.Greeter/CreateGreeting) was removed"],
    ["a route removed from its method", withMethods((m) => (m.name === "CreateGreeting" ? { ...m, http: undefined } : m)),
      "POST /api/v1/greetings (demo.greeter.v1.Greeter/CreateGreeting) was removed"],
    ["a verb changed", withMethods((m) => (m.name === "CreateGreeting" ? { ...m, http: { pattern: { case: "put", value: "/api/v1/greetings" }, body: "*" } } : m)),
      "POST /api/v1/greetings (demo.greeter.v1.Greeter/CreateGreeting) was removed"],
    ["a path now bound to another method", withMethods((m) => (m.name === "SayHello" ? { ...m, name: "Greet" } : m)),
      "GET /api/v1/greeter/{name} is now bound to demo.greeter.v1.Greeter/Greet (was demo.greeter.v1.Greeter/SayHello)"],
    ["a body changed", withMethods((m) => (m.name === "CreateGreeting" ? { ...m, http: { pattern: { case: "post", value: "/api/v1/greetings" }, body: "text" } } : m)),
      'POST /api/v1/greetings: body changed from "*" to "text"'],
    ["a unary method turned into a stream", withMethods((m) => (m.name === "SayHello" ? { ...m, serverStreaming: true } : m)),
      "GET /api/v1/greeter/{name}: demo.greeter.v1.Greeter/SayHello changed from unary to server_streaming"],
  ])("refuses %s", (_, spec, problem) => {
    expect(changes(spec)).toEqual([problem]);
  });
});

describe("breakingChanges: messages", () => {
  it("accepts new fields in requests and responses", () => {
    const spec = withMessages({
      SayHelloRequest: [...GREETER.messages.SayHelloRequest!, ["loud", 3, Type.BOOL]],
      SayHelloResponse: [...GREETER.messages.SayHelloResponse!, ["server_version", 3, Type.STRING]],
    });
    expect(changes(spec)).toEqual([]);
  });

  it.each<[string, Record<string, readonly FieldSpec[]>, string]>([
    ["a request field removed", { CreateGreetingRequest: [["text", 1, Type.STRING]] },
      "POST /api/v1/greetings: request demo.greeter.v1.CreateGreetingRequest.times (field 2) was removed"],
    ["a response field renamed", { SayHelloResponse: [["text", 1, Type.STRING], ["greeted_at", 2, Type.STRING]] },
      "GET /api/v1/greeter/{name}: response demo.greeter.v1.SayHelloResponse.message (field 1) was renamed to text"],
    ["a scalar type changed (int64 is a JSON string, int32 a number)", { CreateGreetingRequest: [["text", 1, Type.STRING], ["times", 2, Type.INT32]] },
      "POST /api/v1/greetings: request demo.greeter.v1.CreateGreetingRequest.times changed type"],
    ["a singular field made repeated", { CreateGreetingResponse: [["id", 1, Type.STRING], ["text", 2, Type.STRING, { repeated: true }]] },
      "POST /api/v1/greetings: response demo.greeter.v1.CreateGreetingResponse.text changed from a scalar field to a list field"],
  ])("refuses %s", (_, messages, problem) => {
    expect(changes(withMessages(messages))).toEqual([problem]);
  });

  describe("nested messages and enums", () => {
    const tree = (node: readonly FieldSpec[], colours = ["COLOUR_UNSPECIFIED", "COLOUR_RED", "COLOUR_BLUE"]): FileSpec => ({
      ...withMessages({
        Node: node,
        SayHelloResponse: [["message", 1, Type.STRING], ["greeted_at", 2, Type.STRING], ["root", 3, Type.MESSAGE, { typeName: ".demo.greeter.v1.Node" }]],
      }),
      enums: { Colour: colours },
    });
    const node: FieldSpec[] = [
      ["label", 1, Type.STRING],
      ["colour", 2, Type.ENUM, { typeName: ".demo.greeter.v1.Colour" }],
      ["children", 3, Type.MESSAGE, { repeated: true, typeName: ".demo.greeter.v1.Node" }],
    ];
    const before = schemaOf(tree(node));

    it("compares a recursive message once and finds no change", () => {
      expect(changes(tree(node), before)).toEqual([]);
    });

    it("names the path to a field removed deep inside", () => {
      expect(changes(tree(node.filter(([name]) => name !== "label")), before)).toEqual([
        "GET /api/v1/greeter/{name}: response demo.greeter.v1.SayHelloResponse.root.label (field 1) was removed",
      ]);
    });

    it("refuses an enum value removed, accepts one added", () => {
      expect(changes(tree(node, ["COLOUR_UNSPECIFIED", "COLOUR_RED"]), before)).toEqual([
        "GET /api/v1/greeter/{name}: response demo.greeter.v1.SayHelloResponse.root.colour: enum value COLOUR_BLUE (2) was removed or renumbered",
      ]);
      expect(changes(tree(node, ["COLOUR_UNSPECIFIED", "COLOUR_RED", "COLOUR_BLUE", "COLOUR_GREEN"]), before)).toEqual([]);
    });
  });
});
