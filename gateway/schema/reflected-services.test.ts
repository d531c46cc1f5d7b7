import { describe, expect, it } from "vitest";
import { file_google_api_annotations } from "../../gen/google/api/annotations_pb.js";
import { Access } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { methodPolicy } from "../../lib/policy.js";
import { bindingsOf } from "../transcoding/bindings.js";
import { reflectedServices } from "./reflected-services.js";
import { filesOf, GREETER } from "./test-support.js";

const GREETER_NAME = "demo.greeter.v1.Greeter";
const serviceOf = (files = filesOf(GREETER), defaultAccess = Access.USER) => reflectedServices(files, { services: [GREETER_NAME], defaultAccess })[0]!;

describe("reflectedServices", () => {
  it("reads the google.api.http rules of descriptors built at run time", () => {
    expect(bindingsOf([serviceOf()]).map((b) => `${b.verb} ${b.template.source} ${b.method.name} body=${b.body}`)).toEqual([
      "GET /api/v1/greeter/{name} SayHello body=", "POST /api/v1/greetings CreateGreeting body=*",
    ]);
  });

  it("keeps a declared policy and gives the default access to methods without one", () => {
    const access = (defaultAccess: Access) => serviceOf(filesOf(GREETER), defaultAccess).methods.map((m) => methodPolicy(m).access);
    expect(access(Access.USER)).toEqual([Access.PUBLIC, Access.USER]);
    expect(access(Access.INTERNAL)).toEqual([Access.PUBLIC, Access.INTERNAL]);
  });

  it("fills the JSON names a reflection server left out, as protoc does", () => {
    expect(serviceOf().methods[0]!.output.fields.map((f) => f.jsonName)).toEqual(["message", "greetedAt"]);
  });

  it("links imports of google/api and the mesh's policy to the gateway's own files", () => {
    expect(serviceOf().file.dependencies).toContain(file_google_api_annotations);
  });

  it("names an import the upstream did not describe", () => {
    const files = filesOf(GREETER);
    files.get("demo/greeter/v1/greeter.proto")!.dependency.push("demo/common/v1/common.proto");
    expect(() => serviceOf(files)).toThrow(/demo\/common\/v1\/common\.proto/);
  });

  it("names a service no reflected file declares", () => {
    expect(() => reflectedServices(filesOf(GREETER), { services: ["demo.greeter.v1.Nope"], defaultAccess: Access.USER }))
      .toThrow("no reflected file declares the service demo.greeter.v1.Nope");
  });
});
