/**
 * Wallet-signed key management over HTTP: `POST /v1/keys` (create, key shown once), `/v1/keys/list`
 * (never the key), `/v1/keys/revoke`. Each request carries an EIP-712 message bound to this chain and
 * this Tollgate deployment, a recent `issuedAt` and a one-time nonce. A refused request changes
 * nothing: no key row, and no nonce consumed (the same nonce is accepted afterwards).
 */
import fs from "node:fs";
import { createHash } from "node:crypto";
import Database from "better-sqlite3";
import { expect } from "chai";
import OpenAI from "openai";
import { getAddress, type Address, type TypedDataDomain } from "viem";
import { apiKeyMessageTypes, gatewayDomain } from "../../server/gateway/api-keys/wallet-messages";
import { USD } from "../../scripts/lib/marketplace-fixtures";
import { nonce, startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

type Buyer = GatewayHarness["market"]["buyers"][number];
type MessageType = keyof typeof apiKeyMessageTypes;
interface ErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

const ask = [{ role: "user" as const, content: "Say hello." }];
const unixNow = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function expectHttpError(response: Response, status: number, code: string | null, param?: string | null): Promise<ErrorBody> {
  const text = await response.text();
  expect(response.status, text).to.equal(status);
  expect(response.headers.get("content-type")).to.match(/^application\/json\b/);
  expect(response.headers.get("x-request-id")).to.be.a("string").and.not.equal("");
  const body = JSON.parse(text) as { error: ErrorBody };
  expect(Object.keys(body)).to.deep.equal(["error"]);
  expect(Object.keys(body.error).sort()).to.deep.equal(["code", "message", "param", "type"]);
  expect(body.error.message).to.be.a("string").and.not.equal("");
  expect(body.error.code).to.equal(code);
  if (param !== undefined) expect(body.error.param).to.equal(param);
  return body.error;
}

describe("API keys: created, listed and revoked with a wallet signature", function () {
  let h: GatewayHarness;

  /** A call with a key that no longer works: the client's AuthenticationError, and nothing recorded. */
  async function expectRefusedAsInvalidKey(client: OpenAI): Promise<void> {
    const records = h.gateway.ctx.store.recordCount();
    let caught: unknown;
    try {
      await client.chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(OpenAI.AuthenticationError);
    expect((caught as InstanceType<typeof OpenAI.APIError>).code).to.equal("invalid_api_key");
    expect(h.gateway.ctx.store.recordCount()).to.equal(records);
  }
  let domain: TypedDataDomain;
  let alice: Buyer;
  let bob: Buyer;

  before(async () => {
    h = await startGatewayHarness();
    alice = h.market.buyers[0];
    bob = h.market.buyers[1];
    await h.deposit(alice, USD(50));
    await h.deposit(bob, USD(50));
    domain = gatewayDomain(Number(h.market.chainId), getAddress(await h.market.tollgate.getAddress()));
  });
  after(async () => h?.close());

  const createMessage = (buyer: Buyer, overrides: Record<string, unknown> = {}) => ({
    buyer: buyer.address,
    label: "test key",
    spendCap: "0",
    models: [] as string[],
    tags: ["team:test"],
    expiresAt: "0",
    issuedAt: String(unixNow()),
    nonce: nonce(),
    ...overrides,
  });
  const listMessage = (buyer: Buyer, overrides: Record<string, unknown> = {}) => ({ buyer: buyer.address, issuedAt: String(unixNow()), nonce: nonce(), ...overrides });
  const revokeMessage = (buyer: Buyer, keyId: string, overrides: Record<string, unknown> = {}) => ({
    buyer: buyer.address,
    keyId,
    issuedAt: String(unixNow()),
    nonce: nonce(),
    ...overrides,
  });

  const sign = (signer: Buyer, primaryType: MessageType, message: Record<string, unknown>, signingDomain: TypedDataDomain = domain) =>
    signer.signTypedData(signingDomain as Record<string, unknown>, { [primaryType]: apiKeyMessageTypes[primaryType].map((field) => ({ ...field })) }, message);

  const PATHS: Record<MessageType, string> = { CreateApiKey: "/v1/keys", ListApiKeys: "/v1/keys/list", RevokeApiKey: "/v1/keys/revoke", OpenSession: "/v1/sessions", CreateBudget: "/v1/budgets", ListBudgets: "/v1/budgets/list", DeleteBudget: "/v1/budgets/delete" };
  const send = (primaryType: MessageType, message: Record<string, unknown>, signature: string) =>
    fetch(`${h.url}${PATHS[primaryType]}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ message, signature }) });
  const signAndSend = async (signer: Buyer, primaryType: MessageType, message: Record<string, unknown>, signingDomain?: TypedDataDomain) =>
    send(primaryType, message, await sign(signer, primaryType, message, signingDomain));

  const keyCount = (buyer: Buyer) => h.gateway.ctx.store.listApiKeys(getAddress(buyer.address)).length;
  const nonceCount = (): number => {
    const db = new Database(h.config.store.path, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT count(*) AS n FROM used_nonces").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  async function list(buyer: Buyer): Promise<{ text: string; data: Record<string, unknown>[] }> {
    const response = await signAndSend(buyer, "ListApiKeys", listMessage(buyer));
    const text = await response.text();
    expect(response.status, text).to.equal(200);
    return { text, data: (JSON.parse(text) as { data: Record<string, unknown>[] }).data };
  }

  /** Refusals change nothing: no key row, no nonce consumed. */
  async function expectRefusedWithoutEffect(buyer: Buyer, refuse: () => Promise<void>): Promise<void> {
    const keys = keyCount(buyer);
    const nonces = nonceCount();
    await refuse();
    expect(keyCount(buyer), "api keys").to.equal(keys);
    expect(nonceCount(), "used nonces").to.equal(nonces);
  }

  it("creates a key shown once (tg_ prefix); the list never shows it; the store keeps only its hash", async () => {
    const message = createMessage(alice, { label: "search backend", spendCap: USD(5).toString(), models: ["small-model"], tags: ["team:search", "env:prod"] });
    const response = await signAndSend(alice, "CreateApiKey", message);
    expect(response.status).to.equal(201);
    const created = (await response.json()) as Record<string, unknown>;
    const key = created.key as string;
    expect(key).to.match(/^tg_[A-Za-z0-9_-]{43}$/);
    expect(created.id).to.match(/^key_/);
    expect(created).to.include({ object: "api_key", buyer: getAddress(alice.address), label: "search backend", spend_cap: USD(5).toString(), spent: "0", revoked_at: null });
    expect(created.models).to.deep.equal(["small-model"]);
    expect(created.tags).to.deep.equal(["team:search", "env:prod"]);
    expect(created.note).to.match(/only time/);

    // The key works.
    const completion = await h.openai(key).chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });
    expect(completion.choices).to.have.length(1);

    // Listed by id, never by the key itself.
    const { text, data } = await list(alice);
    const listed = data.find((entry) => entry.id === created.id)!;
    expect(listed, "the new key is listed").to.not.equal(undefined);
    expect(listed).to.not.have.property("key");
    expect(listed).to.include({ label: "search backend", revoked_at: null });
    expect(listed.tags).to.deep.equal(["team:search", "env:prod"]);
    expect(BigInt(listed.spent as string) > 0n, "the call's cost shows as spent").to.equal(true);
    expect(text).to.not.include(key);
    expect(text).to.not.include(key.slice(3));

    // The database row holds the SHA-256 of the key and nothing that contains the key.
    const db = new Database(h.config.store.path, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare("SELECT * FROM api_keys WHERE id = ?").get(created.id) as Record<string, unknown>;
      expect(row.key_hash).to.equal(`0x${createHash("sha256").update(key).digest("hex")}`);
      for (const [column, value] of Object.entries(row)) expect(String(value), column).to.not.include(key.slice(3));
    } finally {
      db.close();
    }
    for (const file of [h.config.store.path, `${h.config.store.path}-wal`]) {
      if (fs.existsSync(file)) expect(fs.readFileSync(file).includes(Buffer.from(key.slice(3))), file).to.equal(false);
    }
  });

  it("revokes a key: then 401; revoking again, or another buyer's key, is 404", async () => {
    const { key, id } = await h.createKey(alice);
    const client = h.openai(key);
    await client.chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });

    // Bob cannot revoke Alice's key (he has no key by that id), and Alice's key keeps working.
    await expectHttpError(await signAndSend(bob, "RevokeApiKey", revokeMessage(bob, id)), 404, "key_not_found", "message.keyId");
    await client.chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });

    const response = await signAndSend(alice, "RevokeApiKey", revokeMessage(alice, id));
    expect(response.status).to.equal(200);
    expect(await response.json()).to.deep.equal({ id, object: "api_key", revoked: true });

    await expectRefusedAsInvalidKey(client);

    const listed = (await list(alice)).data.find((entry) => entry.id === id)!;
    expect(listed.revoked_at).to.be.a("number");
    await expectHttpError(await signAndSend(alice, "RevokeApiKey", revokeMessage(alice, id)), 404, "key_not_found", "message.keyId");
  });

  it("a signature by another wallet → 401 invalid_signature, and the nonce is not consumed", async () => {
    const message = createMessage(alice);
    await expectRefusedWithoutEffect(alice, async () => {
      const error = await expectHttpError(await signAndSend(bob, "CreateApiKey", message), 401, "invalid_signature", "signature");
      expect(error.type).to.equal("authentication_error");
      await expectHttpError(await send("CreateApiKey", message, "0x1234"), 401, "invalid_signature");
      await expectHttpError(await send("CreateApiKey", message, `0x${"00".repeat(65)}`), 401, "invalid_signature");
      await expectHttpError(await signAndSend(bob, "ListApiKeys", listMessage(alice)), 401, "invalid_signature");
      await expectHttpError(await signAndSend(bob, "RevokeApiKey", revokeMessage(alice, "key_whatever")), 401, "invalid_signature");
    });
    // Alice's own signature of the very same message (same nonce) is accepted.
    expect((await signAndSend(alice, "CreateApiKey", message)).status).to.equal(201);
  });

  it("a signature over different fields than those sent → 401 invalid_signature", async () => {
    const signed = createMessage(alice, { spendCap: USD(1).toString() });
    const signature = await sign(alice, "CreateApiKey", signed);
    await expectRefusedWithoutEffect(alice, async () => {
      for (const tampered of [{ spendCap: "0" }, { models: ["large-model"] }, { tags: ["team:other"] }, { label: "other" }]) {
        await expectHttpError(await send("CreateApiKey", { ...signed, ...tampered }, signature), 401, "invalid_signature");
      }
    });
    expect((await send("CreateApiKey", signed, signature)).status).to.equal(201);
  });

  it("a replayed nonce → 401 nonce_reused, whatever the message type", async () => {
    const message = createMessage(alice);
    const signature = await sign(alice, "CreateApiKey", message);
    const keys = keyCount(alice);
    expect((await send("CreateApiKey", message, signature)).status).to.equal(201);
    await expectHttpError(await send("CreateApiKey", message, signature), 401, "nonce_reused", "message.nonce");
    expect(keyCount(alice)).to.equal(keys + 1);

    // The nonce is spent for list and revoke messages too.
    await expectHttpError(await signAndSend(alice, "ListApiKeys", listMessage(alice, { nonce: message.nonce })), 401, "nonce_reused");
    const listing = listMessage(alice);
    const listSignature = await sign(alice, "ListApiKeys", listing);
    expect((await send("ListApiKeys", listing, listSignature)).status).to.equal(200);
    await expectHttpError(await send("ListApiKeys", listing, listSignature), 401, "nonce_reused");
    // Nonces are per buyer: Bob may use the same value.
    expect((await signAndSend(bob, "CreateApiKey", createMessage(bob, { nonce: message.nonce }))).status).to.equal(201);
  });

  it("a stale or future issuedAt → 401 signature_expired, and the nonce is not consumed", async () => {
    const maxAge = h.config.limits.signatureMaxAgeSeconds;
    const fixedNonce = nonce();
    await expectRefusedWithoutEffect(alice, async () => {
      for (const issuedAt of [unixNow() - maxAge - 5, unixNow() - 86_400, unixNow() + 3_600, 0]) {
        const error = await expectHttpError(await signAndSend(alice, "CreateApiKey", createMessage(alice, { issuedAt: String(issuedAt), nonce: fixedNonce })), 401, "signature_expired", "message.issuedAt");
        expect(error.message).to.include(String(issuedAt));
      }
      await expectHttpError(await signAndSend(alice, "ListApiKeys", listMessage(alice, { issuedAt: String(unixNow() - maxAge - 5) })), 401, "signature_expired");
    });
    expect((await signAndSend(alice, "CreateApiKey", createMessage(alice, { nonce: fixedNonce }))).status).to.equal(201);
  });

  it("a message signed for another chain id, contract or domain → 401 invalid_signature", async () => {
    const message = createMessage(alice);
    const elsewhere: TypedDataDomain[] = [
      { ...domain, chainId: Number(domain.chainId) + 1 },
      { ...domain, chainId: 1 },
      { ...domain, verifyingContract: getAddress(await h.market.token.getAddress()) },
      { ...domain, verifyingContract: "0x000000000000000000000000000000000000dEaD" as Address },
      { ...domain, name: "Tollgate" },
      { ...domain, version: "2" },
    ];
    await expectRefusedWithoutEffect(alice, async () => {
      for (const other of elsewhere) {
        const error = await expectHttpError(await signAndSend(alice, "CreateApiKey", message, other), 401, "invalid_signature", "signature");
        expect(error.message).to.include(String(domain.chainId)).and.include(domain.verifyingContract as string);
      }
    });
    expect((await signAndSend(alice, "CreateApiKey", message)).status).to.equal(201);
  });

  it("invalid key parameters → 400 naming the field, nothing created, nonce not consumed", async () => {
    const fixedNonce = nonce();
    await expectRefusedWithoutEffect(alice, async () => {
      const unknown = await expectHttpError(await signAndSend(alice, "CreateApiKey", createMessage(alice, { models: ["small-model", "gpt-nope"], nonce: fixedNonce })), 400, "model_not_found", "message.models");
      expect(unknown.message).to.include("gpt-nope").and.not.include("small-model,");
      for (const expiresAt of [unixNow() - 10, unixNow(), 1]) {
        await expectHttpError(await signAndSend(alice, "CreateApiKey", createMessage(alice, { expiresAt: String(expiresAt), nonce: fixedNonce })), 400, "invalid_value", "message.expiresAt");
      }
      // No wallet signs a uint64 out of range; the gateway refuses it before looking at the signature.
      await expectHttpError(await send("CreateApiKey", createMessage(alice, { expiresAt: (2n ** 64n).toString(), nonce: fixedNonce }), "0x00"), 400, null, "message.expiresAt");
      await expectHttpError(await signAndSend(alice, "CreateApiKey", createMessage(alice, { tags: ["no-colon"], nonce: fixedNonce })), 400, "invalid_value", "message.tags.0");
      await expectHttpError(await send("CreateApiKey", { ...createMessage(alice, { nonce: fixedNonce }), buyer: "0x1234" }, "0x00"), 400, "invalid_value", "message.buyer");
      await expectHttpError(await send("CreateApiKey", { ...createMessage(alice, { nonce: fixedNonce }), nonce: "0x12" }, "0x00"), 400, "invalid_value", "message.nonce");
      await expectHttpError(await send("CreateApiKey", createMessage(alice, { nonce: fixedNonce }), "not hex"), 400, "invalid_value", "signature");
    });
    expect((await signAndSend(alice, "CreateApiKey", createMessage(alice, { models: ["small-model"], nonce: fixedNonce }))).status).to.equal(201);
  });

  it("tags appear on usage records and GET /v1/usage?tag= filters by them", async () => {
    const carol = h.market.buyers[2];
    await h.deposit(carol, USD(10));
    const search = await h.createKey(carol, { tags: ["team:search", "workflow:nightly-report"] });
    const ads = await h.createKey(carol, { tags: ["team:ads"] });
    for (let i = 0; i < 2; i++) await h.openai(search.key).chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });
    await h.openai(ads.key).chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });
    await h.openai(ads.key).embeddings.create({ model: "embed-model", input: "tag me" });

    const records = h.gateway.ctx.store.recordsOf(getAddress(carol.address));
    expect(records).to.have.length(4);
    for (const record of records) expect(record.tags).to.deep.equal(record.keyId === search.id ? ["team:search", "workflow:nightly-report"] : ["team:ads"]);

    const usage = async (query: string) => {
      const response = await fetch(`${h.url}/v1/usage?${query}`, { headers: { authorization: `Bearer ${ads.key}` } });
      expect(response.status).to.equal(200);
      return (await response.json()) as { data: { key_id: string; tags: string[]; cost: string }[]; total_cost: string };
    };
    const bySearch = await usage("tag=team:search");
    expect(bySearch.data).to.have.length(2);
    for (const entry of bySearch.data) {
      expect(entry.key_id).to.equal(search.id);
      expect(entry.tags).to.include("team:search");
    }
    expect(BigInt(bySearch.total_cost)).to.equal(bySearch.data.reduce((sum, entry) => sum + BigInt(entry.cost), 0n));
    expect((await usage("tag=workflow:nightly-report")).data).to.have.length(2);
    const byAds = await usage("tag=team:ads");
    expect(byAds.data).to.have.length(2);
    expect(byAds.data.every((entry) => entry.key_id === ads.id)).to.equal(true);
    expect((await usage("tag=team:nobody")).data).to.have.length(0);
    // A tag is matched whole, not as a prefix or substring.
    expect((await usage("tag=team")).data).to.have.length(0);
    expect((await usage("tag=team:sea")).data).to.have.length(0);
    expect((await usage("")).data).to.have.length(4);
    // Another buyer's tags never show up here.
    const other = await h.createKey(bob, { tags: ["team:search"] });
    await h.openai(other.key).chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });
    expect((await usage("tag=team:search")).data).to.have.length(2);
  });

  it("a key with a near expiry works, then gets 401 once expiresAt has passed", async () => {
    const expiresAt = unixNow() + 2;
    const { key } = await h.createKey(alice, { expiresAt: BigInt(expiresAt) });
    const client = h.openai(key);
    await client.chat.completions.create({ model: "small-model", messages: ask, max_tokens: 8 });
    const listed = (await list(alice)).data.find((entry) => entry.expires_at === expiresAt);
    expect(listed, "listed with its expiry").to.not.equal(undefined);

    await sleep(Math.max(0, expiresAt * 1000 - Date.now()) + 1_000);
    await expectRefusedAsInvalidKey(client);
    expect(h.gateway.ctx.ledger.openReservations()).to.equal(0);
  });
});
