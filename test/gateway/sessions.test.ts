/**
 * Wallet-signed read sessions (`POST /v1/sessions`), as the web app uses them: one EIP-712 signature by a viem
 * local account opens a `tgs_…` token that reads usage (JSON and CSV), balance and keys, but never pays for a
 * call. Refused openings (replayed nonce, stale issuedAt, another chain, another wallet) change nothing; the
 * token expires, ends with DELETE, and survives a gateway restart on the same store.
 */
import { createHash } from "node:crypto";
import hre from "hardhat";
import Database from "better-sqlite3";
import { expect } from "chai";
import OpenAI from "openai";
import { toHex, type Hex, type LocalAccount, type TypedDataDomain } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  closeSession,
  createApiKey,
  deposit,
  getGatewayBalance,
  getUsage,
  getUsageCsv,
  GatewayRequestError,
  listApiKeys,
  mintTestTokens,
  openSession,
  toWireJson,
  type TollgateClient,
} from "../../client";
import { apiKeyMessageTypes, gatewayDomain } from "../../server/gateway/api-keys/wallet-messages";
import { createGateway, type Gateway } from "../../server/gateway/gateway";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { nonce, startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const ask = [{ role: "user" as const, content: "Say hello." }];
const unixNow = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function fundedAccount(h: GatewayHarness): Promise<LocalAccount> {
  const account = privateKeyToAccount(generatePrivateKey());
  await hre.network.provider.send("hardhat_setBalance", [account.address, toHex(10n ** 20n)]);
  await mintTestTokens(h.market.clientOf(h.market.owner.address as `0x${string}`), { amount: USD(100), to: account.address });
  return account;
}

describe("read sessions: a wallet signs once, then reads usage, balance and keys", function () {
  let h: GatewayHarness;
  let alice: LocalAccount;
  let bob: LocalAccount;
  let aliceClient: TollgateClient;
  let domain: TypedDataDomain;
  let aliceKey: string;

  const clientAt = (url: string, account: LocalAccount): TollgateClient => h.market.clientOf(account, { url });
  const rowCount = (table: "read_sessions" | "used_nonces"): number => {
    const db = new Database(h.config.store.path, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const sessionCount = () => rowCount("read_sessions");
  const nonceCount = () => rowCount("used_nonces");

  const openMessage = (buyer: LocalAccount, overrides: Record<string, unknown> = {}) => ({ buyer: buyer.address, issuedAt: BigInt(unixNow()), nonce: nonce(), ...overrides });
  const sign = (signer: LocalAccount, message: Record<string, unknown>, signingDomain: TypedDataDomain = domain) =>
    signer.signTypedData({ domain: signingDomain, types: { OpenSession: apiKeyMessageTypes.OpenSession }, primaryType: "OpenSession", message } as Parameters<LocalAccount["signTypedData"]>[0]);
  const post = (message: Record<string, unknown>, signature: Hex, url = h.url) =>
    fetch(`${url}/v1/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body: toWireJson({ message, signature }) });
  const get = (path: string, bearer: string, url = h.url) => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${bearer}` } });

  async function expectError(response: Response, status: number, code: string): Promise<ErrorBody["error"]> {
    const text = await response.text();
    expect(response.status, text).to.equal(status);
    expect(response.headers.get("content-type")).to.match(/^application\/json\b/);
    const body = JSON.parse(text) as ErrorBody;
    expect(Object.keys(body.error).sort()).to.deep.equal(["code", "message", "param", "type"]);
    expect(body.error.code).to.equal(code);
    return body.error;
  }

  /** A refused opening leaves no session row and consumes no nonce. */
  async function expectRefusedWithoutEffect(refuse: () => Promise<void>): Promise<void> {
    const sessions = sessionCount();
    const nonces = nonceCount();
    await refuse();
    expect(sessionCount(), "read sessions").to.equal(sessions);
    expect(nonceCount(), "used nonces").to.equal(nonces);
  }

  before(async function () {
    this.timeout(120_000);
    h = await startGatewayHarness();
    domain = gatewayDomain(Number(h.market.chainId), h.gateway.ctx.tollgate);
    alice = await fundedAccount(h);
    bob = await fundedAccount(h);
    aliceClient = clientAt(h.url, alice);
    await deposit(aliceClient, { amount: USD(20) });
    // Two keys, two calls: a session reads across all the buyer's keys.
    const first = await createApiKey(aliceClient, { label: "first", tags: ["team:a"] });
    const second = await createApiKey(aliceClient, { label: "second", tags: ["team:b"] });
    aliceKey = first.key;
    await h.openai(first.key).chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });
    await h.openai(second.key).chat.completions.create({ model: "large-model", messages: ask, max_tokens: 8 });
  });
  after(async () => h?.close());

  it("opens a session with the wallet's signature; the store keeps only the token's hash", async () => {
    const before = unixNow();
    const session = await openSession(aliceClient);
    expect(session.token).to.match(/^tgs_[A-Za-z0-9_-]{43}$/);
    expect(session.buyer).to.equal(alice.address);
    const lifetime = h.config.limits.sessionLifetimeSeconds;
    expect(lifetime, "the default lifetime").to.equal(12 * 3600);
    expect(session.expiresAt).to.be.within(before + lifetime, unixNow() + lifetime);

    const db = new Database(h.config.store.path, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare("SELECT * FROM read_sessions").all() as Record<string, unknown>[];
      const row = rows.find((r) => r.token_hash === `0x${createHash("sha256").update(session.token).digest("hex")}`);
      expect(row, "the session's row, by the token's SHA-256").to.not.equal(undefined);
      expect(row).to.include({ buyer: alice.address, expires_at: session.expiresAt });
      for (const r of rows) for (const [column, value] of Object.entries(r)) expect(String(value), column).to.not.include(session.token.slice(4));
    } finally {
      db.close();
    }
  });

  it("reads usage (JSON and CSV, every key, same filters), balance (key: null) and keys with the session", async () => {
    const { token } = await openSession(aliceClient);
    const byKey = await getUsage(aliceClient, { apiKey: aliceKey });
    const bySession = await getUsage(aliceClient, { session: token });
    expect(bySession.buyer).to.equal(alice.address);
    expect(bySession.data.map((row) => row.model)).to.deep.equal(["small-model", "large-model"]);
    expect(bySession.data.map((row) => row.sequence)).to.deep.equal(byKey.data.map((row) => row.sequence));
    expect(bySession.total_cost).to.equal((BigInt(bySession.data[0].cost) + BigInt(bySession.data[1].cost)).toString());

    const filtered = await getUsage(aliceClient, { session: token, tag: "team:b" });
    expect(filtered.data.map((row) => row.model)).to.deep.equal(["large-model"]);
    const csv = await getUsageCsv(aliceClient, { session: token, model: "small-model" });
    const lines = csv.trim().split("\n");
    expect(lines).to.have.length(2);
    expect(lines[0].split(",")[0]).to.equal("sequence");
    expect(lines[1]).to.include("small-model");

    const balance = await getGatewayBalance(aliceClient, { session: token });
    expect(balance.buyer).to.equal(alice.address);
    expect(balance.key).to.equal(null);
    expect(BigInt(balance.balance)).to.equal(USD(20));
    expect(BigInt(balance.unsettled_usage)).to.equal(BigInt(bySession.total_cost));

    const keys = await listApiKeys(aliceClient, { session: token });
    const signedList = await listApiKeys(aliceClient);
    expect(keys).to.deep.equal(signedList);
    expect(keys.map((key) => key.label)).to.deep.equal(["first", "second"]);
    for (const key of keys) expect(key).to.not.have.property("key");
  });

  it("a session cannot call a model: 401 session_not_api_key in OpenAI's format, and nothing is recorded", async () => {
    const { token } = await openSession(aliceClient);
    const records = h.gateway.ctx.store.recordCount();
    let caught: unknown;
    try {
      await h.openai(token).chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(OpenAI.AuthenticationError);
    expect((caught as InstanceType<typeof OpenAI.APIError>).code).to.equal("session_not_api_key");
    expect((caught as Error).message).to.match(/need an API key/);
    const embeddings = await fetch(`${h.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ model: "embed-model", input: "hello" }),
    });
    await expectError(embeddings, 401, "session_not_api_key");
    expect(h.gateway.ctx.store.recordCount()).to.equal(records);
  });

  it("refuses a replayed nonce, a stale issuedAt, another chain's domain and another wallet's signature, changing nothing", async () => {
    const message = openMessage(alice);
    const signature = await sign(alice, message);
    expect((await post(message, signature)).status).to.equal(201);
    await expectRefusedWithoutEffect(async () => {
      await expectError(await post(message, signature), 401, "nonce_reused");

      const stale = openMessage(alice, { issuedAt: BigInt(unixNow() - h.config.limits.signatureMaxAgeSeconds - 10) });
      await expectError(await post(stale, await sign(alice, stale)), 401, "signature_expired");
      const future = openMessage(alice, { issuedAt: BigInt(unixNow() + 600) });
      await expectError(await post(future, await sign(alice, future)), 401, "signature_expired");

      const otherChain = openMessage(alice);
      await expectError(await post(otherChain, await sign(alice, otherChain, { ...domain, chainId: Number(h.market.chainId) + 1 })), 401, "invalid_signature");
      const otherContract = openMessage(alice);
      await expectError(await post(otherContract, await sign(alice, otherContract, { ...domain, verifyingContract: bob.address })), 401, "invalid_signature");

      // Bob signs a message naming Alice: no session for anyone.
      const forged = openMessage(alice);
      await expectError(await post(forged, await sign(bob, forged)), 401, "invalid_signature");
      const malformed = await fetch(`${h.url}/v1/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ message: { buyer: "alice" }, signature: "0x12" }) });
      expect(malformed.status).to.equal(400);
    });
  });

  it("unknown, malformed and ended tokens get the same 401 as a bad key; DELETE ends a session", async () => {
    const bad = `tgs_${"A".repeat(43)}`;
    for (const token of [bad, "tgs_short", "not-a-token"]) {
      const error = await expectError(await get("/v1/usage", token), 401, "invalid_api_key");
      expect(error.type).to.equal("authentication_error");
      await expectError(await get("/v1/keys", token), 401, "invalid_api_key");
    }

    const { token } = await openSession(aliceClient);
    expect((await get("/v1/balance", token)).status).to.equal(200);
    // An API key does not end a session, and the route ends only the session that sends it.
    await expectError(await fetch(`${h.url}/v1/sessions/current`, { method: "DELETE", headers: { authorization: `Bearer ${aliceKey}` } }), 401, "invalid_api_key");
    const sessions = sessionCount();
    expect(await closeSession(aliceClient, { session: token })).to.deep.equal({ buyer: alice.address, ended: true });
    expect(sessionCount()).to.equal(sessions - 1);
    await expectError(await get("/v1/balance", token), 401, "invalid_api_key");
    const again = await closeSession(aliceClient, { session: token }).catch((error: unknown) => error);
    expect(again).to.be.instanceOf(GatewayRequestError);
    expect((again as GatewayRequestError).code).to.equal("invalid_api_key");
    // The key itself still reads.
    expect((await get("/v1/balance", aliceKey)).status).to.equal(200);
  });

  it("a session expires after the configured lifetime", async () => {
    const ctx = h.gateway.ctx as { sessionLifetimeSeconds: number };
    const lifetime = ctx.sessionLifetimeSeconds;
    ctx.sessionLifetimeSeconds = 1;
    try {
      const session = await openSession(aliceClient);
      expect((await get("/v1/usage", session.token)).status).to.equal(200);
      while (unixNow() < session.expiresAt) await sleep(100);
      await expectError(await get("/v1/usage", session.token), 401, "invalid_api_key");
      await expectError(await get("/v1/keys", session.token), 401, "invalid_api_key");
    } finally {
      ctx.sessionLifetimeSeconds = lifetime;
    }
  });

  it("a session survives a gateway restart on the same store", async function () {
    this.timeout(60_000);
    const { token } = await openSession(aliceClient);
    const before = await getUsage(aliceClient, { session: token });
    await h.gateway.close();
    let restarted: Gateway | undefined;
    try {
      restarted = await createGateway({ config: h.config, client: h.client });
      const url = await restarted.listen(0, "127.0.0.1");
      const after = await getUsage(clientAt(url, alice), { session: token });
      expect(after.data.map((row) => row.sequence)).to.deep.equal(before.data.map((row) => row.sequence));
      const keys = (await (await get("/v1/keys", token, url)).json()) as { data: unknown[] };
      expect(keys.data).to.have.length(2);
    } finally {
      await restarted?.close();
    }
  });
});
