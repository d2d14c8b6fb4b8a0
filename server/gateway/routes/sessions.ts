/**
 * Read sessions for the web app: a wallet signs one `OpenSession` message (same domain, freshness and
 * once-only nonce as the key messages) and gets a bearer token that reads its usage, balance and keys
 * until it expires, so a page load needs no signature. The token never pays for a call (see
 * `middleware/authenticate.ts`). `DELETE /v1/sessions/current` ends the session that sends it.
 */
import type { Request, Response } from "express";
import type { Hex } from "viem";
import type { z } from "zod";
import { generateSessionToken } from "../api-keys/key-material";
import { openSessionMessage, signedRequest } from "../api-keys/wallet-messages";
import type { GatewayContext } from "../context";
import { parseBody } from "../http/parse-body";
import { authorize, rawMessageOf } from "./api-keys";

export function openSession(ctx: GatewayContext) {
  const schema = signedRequest(openSessionMessage);
  return async (req: Request, res: Response): Promise<void> => {
    const signed = parseBody(schema, req.body) as { message: z.infer<typeof openSessionMessage>; signature: Hex };
    await authorize(ctx, "OpenSession", signed, { ...rawMessageOf(req.body), issuedAt: signed.message.issuedAt });
    const now = Math.floor(Date.now() / 1000);
    const { token, tokenHash } = generateSessionToken();
    const session = { tokenHash, buyer: signed.message.buyer, createdAt: now, expiresAt: now + ctx.sessionLifetimeSeconds };
    // Fleet mode: shared first, so every instance reads with it (fleet/fleet-sessions.ts).
    await ctx.fleetSessions?.open(session);
    ctx.store.insertReadSession(session, now);
    ctx.logger.info({ requestId: req.id, buyer: session.buyer, expiresAt: session.expiresAt }, "read session opened");
    res.status(201).json({ object: "session", token, buyer: session.buyer, expires_at: session.expiresAt });
  };
}

export function closeSession(ctx: GatewayContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const session = req.readSession!;
    await ctx.fleetSessions?.end(session.tokenHash);
    ctx.store.endReadSession(session.tokenHash);
    ctx.logger.info({ requestId: req.id, buyer: session.buyer }, "read session ended");
    res.json({ object: "session", buyer: session.buyer, ended: true });
  };
}
