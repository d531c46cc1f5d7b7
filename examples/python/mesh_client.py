"""A Python program using the mesh through its gateway.

Registers a new user, logs in and creates a project over native gRPC (stubs
generated from proto/ by `npm run gen:polyglot`), then reads the same project
over REST and checks that both agree. Exits 1 on any failure.

    python mesh_client.py --addr localhost:8080
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

GEN = Path(__file__).resolve().parent / "gen"
if not (GEN / "mesh").is_dir():
    sys.exit(f"mesh_client: no generated code in {GEN}: run `npm run gen:polyglot -- python` in the repository root")
sys.path.insert(0, str(GEN))  # the generated modules import each other as top-level packages (mesh.*, google.*)

import grpc  # noqa: E402
from google.protobuf import descriptor_pool, json_format, message_factory  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402,F401  (registers google.rpc.BadRequest & co. for the details)
from google.rpc import status_pb2  # noqa: E402
from mesh.auth.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402
from mesh.project.v1 import project_pb2, project_pb2_grpc  # noqa: E402


class Failure(Exception):
    """A step that failed, with the message its user needs."""


def main() -> int:
    args = parse_args()
    try:
        run(args)
    except Failure as e:
        print(f"mesh_client: {e}", file=sys.stderr)
        return 1
    return 0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addr", default=os.environ.get("MESH_GATEWAY", "localhost:8080"),
                   help="gateway host:port (env MESH_GATEWAY; default localhost:8080)")
    p.add_argument("--email", help="email to register (default: a new random address)")
    p.add_argument("--password", default="polyglot-python-1",
                   help="password to register (8-128 characters, a letter and a digit)")
    p.add_argument("--project", default="python example", help="name of the project to create")
    p.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, in seconds")
    args = p.parse_args()
    host, _, port = args.addr.rpartition(":")
    if not host or not port.isdigit():
        p.error(f"--addr {args.addr!r} is not host:port")
    if args.email is None:
        args.email = f"python-{secrets.token_hex(6)}@example.com"
    return args


def run(args: argparse.Namespace) -> None:
    # The gateway speaks cleartext HTTP/2 (h2c) on its one port; put TLS in front of it in production.
    with grpc.insecure_channel(args.addr) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        projects = project_pb2_grpc.ProjectServiceStub(channel)
        print(f"gateway {args.addr} (native gRPC and REST)")

        reg = call("Register", auth.Register,
                   auth_pb2.RegisterRequest(email=args.email, password=args.password, name="Python example"),
                   timeout=args.timeout)
        print(f"registered {reg.user.email} (user {reg.user.id}) over gRPC")

        login = call("Login", auth.Login, auth_pb2.LoginRequest(email=args.email, password=args.password),
                     timeout=args.timeout)
        print(f"logged in: {login.token_type} token, expires in {login.expires_in} s")

        # The access token goes in the `authorization` metadata, as the REST API's Authorization header.
        created, rpc = call("CreateProject", projects.CreateProject.with_call,
                            project_pb2.CreateProjectRequest(name=args.project, description="created by examples/python"),
                            timeout=args.timeout, metadata=[("authorization", f"Bearer {login.access_token}")])
        project = created.project
        print(f'created project {project.id} ("{project.name}") over gRPC, request id {request_id(rpc) or "-"}')

    fetched = get_project_rest(args.addr, login.access_token, project.id, args.timeout)
    if fetched != project:
        raise Failure("REST answered another project than gRPC created:\n"
                      f"  gRPC: {json_format.MessageToJson(project, indent=None)}\n"
                      f"  REST: {json_format.MessageToJson(fetched, indent=None)}")
    print(f"read project {project.id} over REST: matches what gRPC created")


def call(name: str, method, request, **kwargs):
    """Calls `method`; a gRPC error becomes a Failure naming the RPC, the status code, message and details."""
    try:
        return method(request, **kwargs)
    except grpc.RpcError as e:
        raise Failure(describe_rpc_error(name, e)) from None


def describe_rpc_error(name: str, e: grpc.RpcError) -> str:
    code = e.code()  # grpc.StatusCode; its value is (number, "lower case name")
    lines = [f"{name} failed: gRPC status {code.name} ({code.value[0]}): {e.details()}"]
    trailers = dict(e.trailing_metadata() or ())
    # The google.rpc.Status behind the error, with its typed details (e.g. BadRequest field violations).
    status = trailers.get("grpc-status-details-bin")
    if status:
        for detail in status_pb2.Status.FromString(status).details:
            try:
                message = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(detail.TypeName()))()
            except KeyError:  # a detail type this program does not know
                lines.append(f"  detail {detail.type_url} (not decoded)")
                continue
            detail.Unpack(message)
            lines.append(f"  detail {detail.TypeName()}: {json_format.MessageToJson(message, indent=None)}")
    rid = request_id(e)
    if rid:
        lines.append(f"  request id: {rid}")
    return "\n".join(lines)


def request_id(rpc: grpc.Call) -> str | None:
    """The gateway's x-request-id of a call (finds its log lines and trace); None if it never reached the gateway."""
    for md in (rpc.initial_metadata(), rpc.trailing_metadata()):
        for key, value in md or ():
            if key == "x-request-id":
                return value
    return None


def get_project_rest(addr: str, token: str, project_id: str, timeout: float) -> project_pb2.Project:
    """GET /api/v1/projects/{id} through the gateway: the Project in proto3 JSON."""
    url = f"http://{addr}/api/v1/projects/{urllib.parse.quote(project_id, safe='')}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            body = res.read()
    except urllib.error.HTTPError as e:
        raise Failure(f"REST GET {url}: HTTP {e.code}, {describe_envelope(e.read())}") from None
    except (urllib.error.URLError, OSError) as e:
        raise Failure(f"REST GET {url}: {getattr(e, 'reason', e)}") from None
    try:
        # Strict: a field the contract does not know is an error, not silently dropped.
        return json_format.Parse(body, project_pb2.Project())
    except json_format.ParseError as e:
        raise Failure(f"REST GET {url}: the reply is not a mesh.project.v1.Project: {e}") from None


def describe_envelope(body: bytes) -> str:
    """The gateway's JSON error envelope ({error, message, requestId, …}) in one line."""
    try:
        env = json.loads(body)
        return f"{env['error']}: {env['message']} (request id {env.get('requestId', '-')})"
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


if __name__ == "__main__":
    sys.exit(main())
