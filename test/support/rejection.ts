import { ConnectError } from "@connectrpc/connect";

/** The ConnectError `call` rejects with; fails the test when it resolves. */
export async function rejectionOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, but it succeeded");
}
