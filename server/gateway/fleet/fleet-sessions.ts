/**
 * Read sessions and the nonces of wallet-signed messages, shared by the fleet.
 *
 * A session lives in Redis under its token's hash, with the session's own expiry (Redis drops it then), and in the
 * SQLite store of each instance that saw it. Chosen over a token every instance could verify alone (an HMAC under a
 * fleet secret, or the signed OpenSession message itself): ending a session early (`DELETE /v1/sessions/current`)
 * would need a shared deny-list anyway, and an HMAC would add a secret to hand to every instance and rotate. Redis
 * answers for a session while it is reachable (one GET per read request; read routes are off the paid path), so a
 * session ended on one instance ends on all; while Redis is down, the sessions an instance has seen keep reading.
 *
 * Nonces: a signed message used on one instance must not be replayed on another (a replayed CreateApiKey would hand
 * the replayer a key), so each is also taken in Redis (SET NX, expiring with the message).
 */
import type { Redis } from "ioredis";
import type { Address, Hex } from "viem";
import type { ReadSession, UsageStore } from "../../store/usage-store";
import { CONSUME_NONCE_SCRIPT } from "./definition-scripts";
import type { FleetLedger } from "./fleet-ledger";
import { lower } from "./store-layout";
import { sharedStoreUnavailableForChange } from "./store-unavailable";

interface SessionCommands {
  tgConsumeNonce(...args: string[]): Promise<number>;
}

export class FleetSessions {
  private readonly redis: Redis & SessionCommands;

  constructor(private readonly deps: { fleet: FleetLedger; store: UsageStore }) {
    this.redis = deps.fleet.connection as Redis & SessionCommands;
    this.redis.defineCommand("tgConsumeNonce", { numberOfKeys: 0, lua: CONSUME_NONCE_SCRIPT });
  }

  private key(tokenHash: Hex): string {
    return `${this.deps.fleet.prefix}rs:${tokenHash.toLowerCase()}`;
  }

  /** Before the session is written locally: throws the 503 when the fleet cannot take it. */
  async open(session: ReadSession): Promise<void> {
    await this.must(() => this.redis.set(this.key(session.tokenHash), JSON.stringify(session), "EXAT", session.expiresAt));
  }

  async end(tokenHash: Hex): Promise<void> {
    await this.must(() => this.redis.del(this.key(tokenHash)));
  }

  /** The live session with this token hash: the fleet's answer while it can give one (adopted locally), else this store's. */
  async find(tokenHash: Hex, now: number): Promise<ReadSession | undefined> {
    const { store } = this.deps;
    let json: string | null;
    try {
      if (this.redis.status !== "ready") throw new Error("not connected");
      json = await this.redis.get(this.key(tokenHash));
    } catch {
      return store.findReadSession(tokenHash, now);
    }
    const local = store.findReadSession(tokenHash, now);
    if (json === null) {
      // Ended (or expired) on another instance: the copy here goes too.
      if (local) store.endReadSession(tokenHash);
      return undefined;
    }
    const session = JSON.parse(json) as ReadSession;
    if (session.expiresAt <= now) return undefined;
    if (!local) store.insertReadSession(session, now);
    return session;
  }

  /** True the first time the fleet sees this nonce of the buyer; throws the 503 when it cannot tell. */
  async consumeNonce(buyer: Address, nonce: Hex, expiresAt: number): Promise<boolean> {
    return (await this.must(() => this.redis.tgConsumeNonce(this.deps.fleet.prefix, lower(buyer), nonce.toLowerCase(), String(expiresAt)))) === 1;
  }

  private async must<T>(op: () => Promise<T>): Promise<T> {
    if (this.redis.status !== "ready") throw sharedStoreUnavailableForChange("the shared store is unreachable");
    try {
      return await op();
    } catch {
      throw sharedStoreUnavailableForChange("the shared store did not answer in time");
    }
  }
}
