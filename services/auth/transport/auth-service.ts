import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { followFeed } from "../../../lib/event-feed.js";
import { AuthService, UserSchema, type User as UserMessage } from "../../../gen/mesh/auth/v1/auth_pb.js";
import type { AuthDomain, Session, User } from "../domain/auth-domain.js";
import { callerOf } from "./authenticate.js";

function userMessage(u: User): UserMessage {
  return create(UserSchema, {
    id: u.id, email: u.email, name: u.name, roles: [...u.roles], emailVerified: u.emailVerified,
    active: u.active, createdAt: timestampFromDate(u.createdAt),
  });
}

function tokens(s: Session) {
  return { accessToken: s.accessToken, refreshToken: s.refreshToken, tokenType: "Bearer", expiresIn: s.expiresIn };
}

/** How often a revocation watcher looks for new entries. */
const WATCH_POLL_MS = 250;

/** gRPC surface of the auth service: maps messages to domain calls and back, nothing more. */
export function createAuthServiceImpl(domain: AuthDomain): ServiceImpl<typeof AuthService> {
  return {
    async register(req) {
      const user = await domain.register(req);
      return { message: "Registration successful", user: userMessage(user) };
    },
    async login(req) {
      const session = await domain.login(req);
      return { user: userMessage(session.user), ...tokens(session) };
    },
    async refresh(req) {
      return tokens(await domain.refresh(req.refreshToken));
    },
    async logout(req, ctx) {
      await domain.logout(callerOf(ctx), req.refreshToken);
      return { message: "Logged out successfully" };
    },
    async getProfile(_req, ctx) {
      return { user: userMessage(await domain.profile(callerOf(ctx))) };
    },
    async sendVerificationEmail(req) {
      await domain.sendVerificationEmail(req.email);
      return { message: "Verification email sent" };
    },
    async verifyEmail(req) {
      await domain.verifyEmail(req.token);
      return { message: "Email verified successfully" };
    },
    async forgotPassword(req) {
      await domain.forgotPassword(req.email);
      return { message: "If email exists, reset link has been sent" };
    },
    async resetPassword(req) {
      await domain.resetPassword(req.token, req.newPassword);
      return { message: "Password reset successfully" };
    },
    getJwks() {
      return { keys: domain.publicJwks().map((k) => ({ kty: k.kty, kid: k.kid, alg: k.alg, use: k.use, crv: k.crv, x: k.x })) };
    },
    async setUserActive(req, ctx) {
      return { user: userMessage(await domain.setUserActive(callerOf(ctx), req.userId, req.active)) };
    },
    async listRevokedTokens(req) {
      const tokens = await domain.listRevokedTokens(req.afterSequence, req.limit);
      return { tokens: tokens.map((t) => ({ jti: t.jti, expiresAt: timestampFromDate(t.expiresAt), sequence: t.sequence })) };
    },
    async *watchRevokedTokens(req, ctx) {
      const feed = followFeed({
        after: req.afterSequence, signal: ctx.signal, intervalMs: WATCH_POLL_MS,
        read: (after, limit) => domain.listRevokedTokens(after, limit), versionOf: (t) => t.sequence,
      });
      for await (const t of feed) {
        yield { token: { jti: t.jti, expiresAt: timestampFromDate(t.expiresAt), sequence: t.sequence } };
      }
    },
  };
}
