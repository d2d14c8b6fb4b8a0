/**
 * A usage store in a temp directory with Alice's and Bob's keys, and well-formed records to append: the
 * fixtures of the store's own tests (test/store/*).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { getAddress, keccak256, toHex, type Address, type Hex } from "viem";
import { UsageStore, type ApiKeyRecord, type Budget, type SignedReceipt, type UsageRecordInput } from "../../server/store/usage-store";

export const SIGNER = getAddress("0x1111111111111111111111111111111111111111");
export const OTHER_SIGNER = getAddress("0x2222222222222222222222222222222222222222");
export const ALICE = getAddress("0xa11ce00000000000000000000000000000000a11");
export const BOB = getAddress("0xb0b0000000000000000000000000000000000b0b");

/** Stores and directories the tests opened: close and remove them with `closeStores` and `removeTempDirs`. */
export const tempDirs: string[] = [];
export const openStores: UsageStore[] = [];

export function tempDb(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "usage-store-"));
  tempDirs.push(dir);
  return path.join(dir, "usage.sqlite");
}

export function open(file: string, firstSequence = 0n, signer: Address = SIGNER): UsageStore {
  const store = UsageStore.open({ path: file, signer, firstSequence });
  openStores.push(store);
  return store;
}

export function sign(sequence: bigint): SignedReceipt {
  const receiptHash = keccak256(toHex(sequence));
  return { receiptHash, signature: `${receiptHash}${"1b".padStart(66, "0")}` as Hex };
}

let requestCounter = 0;

export function usage(overrides: Partial<UsageRecordInput> = {}): UsageRecordInput {
  requestCounter += 1;
  return {
    requestId: `req-${requestCounter}`,
    buyer: ALICE,
    keyId: "key-alice",
    tags: ["team:search", "workflow:nightly"],
    endpoint: "chat.completions",
    modelId: 7,
    modelName: "tiny-chat",
    priceEpoch: 2,
    inputTokens: 120,
    cachedInputTokens: 20,
    outputTokens: 45,
    reasoningTokens: 5,
    gatewayInputTokens: 121,
    gatewayOutputTokens: 45,
    countSource: "upstream",
    servedAt: 1_700_000_000,
    inputPrice: 3_000_000n,
    cachedInputPrice: 300_000n,
    outputPrice: 15_000_000n,
    cost: 1_000n,
    contentHash: keccak256(toHex(`content-${requestCounter}`)),
    contentSalt: keccak256(toHex(`salt-${requestCounter}`)),
    requestHash: keccak256(toHex(`request-${requestCounter}`)),
    responseHash: keccak256(toHex(`response-${requestCounter}`)),
    streamed: false,
    completed: true,
    ...overrides,
  };
}

export function apiKey(overrides: Partial<Omit<ApiKeyRecord, "revokedAt" | "spent">> = {}): Omit<ApiKeyRecord, "revokedAt" | "spent"> {
  const id = overrides.id ?? "key-alice";
  return {
    id,
    buyer: ALICE,
    keyHash: keccak256(toHex(`secret-${id}`)),
    label: `label of ${id}`,
    spendCap: null,
    models: null,
    tags: ["team:search", "workflow:nightly"],
    expiresAt: null,
    createdAt: 1_700_000_000,
    ...overrides,
  };
}

/** A store with Alice's and Bob's keys, as the gateway has before serving. */
export function storeWithKeys(file = tempDb(), firstSequence = 0n): UsageStore {
  const store = open(file, firstSequence);
  store.insertApiKey(apiKey());
  store.insertApiKey(apiKey({ id: "key-alice-2", tags: ["team:ads"] }));
  store.insertApiKey(apiKey({ id: "key-bob", buyer: BOB, tags: ["team:search"] }));
  return store;
}

export function closeStores(): void {
  for (const store of openStores.splice(0)) store.close();
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Alice's daily budget of 10,000 base units on `team:search`, alerting at 50% and 100%, with no webhook. */
export function budget(overrides: Partial<Budget> = {}): Budget {
  return {
    id: "bud_search",
    buyer: ALICE,
    scope: "tag",
    target: "team:search",
    period: "day",
    limit: 10_000n,
    thresholdsBps: [5_000, 10_000],
    webhookUrl: null,
    webhookSecret: null,
    degrade: null,
    label: "",
    createdAt: 1_700_000_000,
    deletedAt: null,
    ...overrides,
  };
}
