import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequest_FieldViolationSchema, BadRequestSchema } from "../gen/google/rpc/error_details_pb.js";

/** One problem with one request field: `field` is a proto field path such as `email` or `logs[3].path`. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/**
 * INVALID_ARGUMENT carrying a `google.rpc.BadRequest` with every violation, so
 * clients (and the gateway's error envelope) can name each bad field. The
 * message lists them too, for clients that ignore details.
 */
export function invalidArgument(violations: readonly FieldViolation[]): ConnectError {
  const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  const fieldViolations = violations.map((v) => create(BadRequest_FieldViolationSchema, { ...v }));
  return new ConnectError(message || "invalid argument", Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations }) },
  ]);
}

/** Collects violations while checking a request; `throwIfAny` raises them all at once. */
export function createViolations() {
  const list: FieldViolation[] = [];
  return {
    add(field: string, description: string): void {
      list.push({ field, description });
    },
    get list(): readonly FieldViolation[] {
      return list;
    },
    throwIfAny(): void {
      if (list.length > 0) throw invalidArgument(list);
    },
  };
}

/** The field violations an error carries, empty when it carries none. */
export function fieldViolationsOf(err: unknown): FieldViolation[] {
  if (!(err instanceof ConnectError)) return [];
  return err.findDetails(BadRequestSchema).flatMap((d) =>
    d.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
}
