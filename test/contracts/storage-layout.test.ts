/**
 * The layouts the assembly depends on, checked against what the compiler reports:
 *  - the storage layout of every deployable contract (variables, their slots, and every struct's packing)
 *    against a committed snapshot, so a change to any of them is a deliberate, reviewed change;
 *  - AccountPacking's offsets, widths and masks against the compiler's layout of `TollgateVault.Account`;
 *  - UsageSettlement's memory offsets (`TALLY_*`, `TERMS_*`) against the field order of its structs.
 *
 * After an intended layout change: UPDATE_STORAGE_LAYOUT=1 npx hardhat test test/contracts/storage-layout.test.ts
 * rewrites the snapshot; commit it with the change.
 */
import fs from "node:fs";
import path from "node:path";
import hre from "hardhat";
import { expect } from "chai";

const SNAPSHOT = path.join(__dirname, "storage-layout.snapshot.json");
const DEPLOYABLE = [
  "contracts/Tollgate.sol:Tollgate",
  "contracts/TollgateCredits.sol:TollgateCredits",
  "contracts/TollgateSubscriptions.sol:TollgateSubscriptions",
];

interface StorageEntry {
  label: string;
  slot: string;
  offset: number;
  type: string;
}
interface StorageType {
  label: string;
  encoding: string;
  numberOfBytes: string;
  members?: StorageEntry[];
  key?: string;
  value?: string;
  base?: string;
}
interface StorageLayout {
  storage: StorageEntry[];
  types: Record<string, StorageType> | null;
}

// Type ids carry AST ids (`t_struct(Account)12345_storage`), which move with any edit anywhere.
const stripIds = (id: string) => id.replace(/\)(\d+)_/g, ")_").replace(/\)(\d+)$/g, ")");

function normalize(layout: StorageLayout) {
  const entry = (e: StorageEntry) => ({ label: e.label, slot: e.slot, offset: e.offset, type: stripIds(e.type) });
  const types: Record<string, unknown> = {};
  for (const [id, t] of Object.entries(layout.types ?? {}).sort(([a], [b]) => stripIds(a).localeCompare(stripIds(b)))) {
    types[stripIds(id)] = {
      label: t.label,
      encoding: t.encoding,
      numberOfBytes: t.numberOfBytes,
      ...(t.members ? { members: t.members.map(entry) } : {}),
      ...(t.key ? { key: stripIds(t.key) } : {}),
      ...(t.value ? { value: stripIds(t.value) } : {}),
      ...(t.base ? { base: stripIds(t.base) } : {}),
    };
  }
  return { storage: layout.storage.map(entry), types };
}

async function buildOf(fullName: string) {
  const build = await hre.artifacts.getBuildInfo(fullName);
  if (!build) throw new Error(`no build info for ${fullName}: compile first`);
  return build;
}

async function storageLayoutOf(fullName: string): Promise<StorageLayout> {
  const [source, name] = fullName.split(":");
  // Hardhat's output type lists only its default selections; storageLayout is ours (hardhat.config.ts).
  const output = (await buildOf(fullName)).output.contracts[source][name] as { storageLayout?: StorageLayout };
  const layout = output.storageLayout;
  if (!layout) throw new Error("the compiler output has no storageLayout: hardhat.config.ts must select it");
  return layout;
}

// ---- the AST: constants and struct definitions, by name ----

type AstNode = { nodeType: string; name?: string; nodes?: AstNode[]; members?: AstNode[]; [key: string]: unknown };

async function sourceAst(fullName: string, source: string): Promise<AstNode> {
  const ast = (await buildOf(fullName)).output.sources[source]?.ast as AstNode | undefined;
  if (!ast) throw new Error(`no AST for ${source}`);
  return ast;
}

function contractNode(unit: AstNode, name: string): AstNode {
  const node = unit.nodes?.find((n) => n.nodeType === "ContractDefinition" && n.name === name);
  if (!node) throw new Error(`no contract ${name}`);
  return node;
}

/**
 * Constants declared directly in `scope` (a contract, library or source unit) whose names match `pattern`.
 * They must be number literals: each layout constant is checked on its own, none derived from another.
 */
function literalConstants(scope: AstNode, pattern: RegExp): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const n of scope.nodes ?? []) {
    if (n.nodeType !== "VariableDeclaration" || n.constant !== true || !pattern.test(n.name!)) continue;
    const value = n.value as AstNode | undefined;
    expect(value?.nodeType === "Literal" && value.kind === "number", `${n.name} is a number literal`).to.equal(true);
    out.set(n.name!, BigInt(String(value!.value).replace(/_/g, "")));
  }
  return out;
}

function structFields(scope: AstNode, name: string): string[] {
  const node = scope.nodes?.find((n) => n.nodeType === "StructDefinition" && n.name === name);
  if (!node) throw new Error(`no struct ${name}`);
  return node.members!.map((m) => m.name!);
}

const screamingSnake = (camel: string) => camel.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

describe("storage and memory layouts", function () {
  before(async function () {
    await hre.run("compile", { quiet: true });
  });

  it("every deployable contract's storage layout matches the committed snapshot", async function () {
    const actual: Record<string, unknown> = {};
    for (const name of DEPLOYABLE) actual[name] = normalize(await storageLayoutOf(name));
    if (process.env.UPDATE_STORAGE_LAYOUT === "1") {
      fs.writeFileSync(SNAPSHOT, `${JSON.stringify(actual, null, 2)}\n`);
    }
    const expected = JSON.parse(fs.readFileSync(SNAPSHOT, "utf8"));
    expect(actual, "storage layout changed: review it, then UPDATE_STORAGE_LAYOUT=1 to rewrite the snapshot").to.deep.equal(
      expected,
    );
  });

  it("AccountPacking's constants are the compiler's layout of TollgateVault.Account", async function () {
    const layout = await storageLayoutOf("contracts/Tollgate.sol:Tollgate");
    const accounts = layout.storage.find((e) => e.label === "_accounts");
    expect(accounts, "_accounts in Tollgate's storage").to.not.equal(undefined);
    const account = layout.types![layout.types![accounts!.type].value!];
    expect(account.label).to.equal("struct TollgateVault.Account");
    // One word, so one SLOAD and one SSTORE per buyer and batch.
    expect(account.numberOfBytes).to.equal("32");

    const unit = await sourceAst("contracts/Tollgate.sol:Tollgate", "contracts/libraries/AccountPacking.sol");
    const lib = literalConstants(contractNode(unit, "AccountPacking"), /./);
    const fileLevel = literalConstants(unit, /^ACCOUNT_/);
    const constant = (name: string) => {
      const value = lib.get(name);
      if (value === undefined) throw new Error(`AccountPacking.${name} missing`);
      return value;
    };
    const fields: Record<string, string> = {
      balance: "BALANCE",
      pendingWithdrawal: "PENDING",
      withdrawableAt: "WITHDRAWABLE_AT",
      flags: "FLAGS",
    };
    expect(account.members!.map((m) => m.label)).to.deep.equal(Object.keys(fields));
    for (const member of account.members!) {
      const prefix = fields[member.label];
      expect(member.slot, `${member.label} in the account's one slot`).to.equal("0");
      const bits = BigInt(layout.types![member.type].numberOfBytes) * 8n;
      expect(constant(`${prefix}_OFFSET`), `${prefix}_OFFSET`).to.equal(BigInt(member.offset) * 8n);
      expect(constant(`${prefix}_BITS`), `${prefix}_BITS`).to.equal(bits);
      expect(constant(`${prefix}_MASK`), `${prefix}_MASK`).to.equal((1n << bits) - 1n);
    }
    const pending = account.members!.find((m) => m.label === "pendingWithdrawal")!;
    const moneyBits = BigInt(pending.offset + Number(layout.types![pending.type].numberOfBytes)) * 8n;
    // Balance and pending withdrawal are the low bits, so one mask covers both.
    expect(account.members![0].offset).to.equal(0);
    expect(constant("MONEY_MASK")).to.equal((1n << moneyBits) - 1n);
    expect(fileLevel.get("ACCOUNT_HAS_LIMITS_BIT")).to.equal(constant("FLAG_HAS_LIMITS") << constant("FLAGS_OFFSET"));
    expect(fileLevel.get("ACCOUNT_HAS_SUBSCRIPTION_BIT")).to.equal(
      constant("FLAG_HAS_SUBSCRIPTION") << constant("FLAGS_OFFSET"),
    );
  });

  it("UsageSettlement's memory offsets name the fields of ModelTerms and BuyerTally", async function () {
    const unit = await sourceAst("contracts/Tollgate.sol:Tollgate", "contracts/UsageSettlement.sol");
    const settlement = contractNode(unit, "UsageSettlement");
    const constants = literalConstants(settlement, /^(TERMS_|TALLY_|ARRAY_DATA$)/);
    for (const [prefix, struct] of [
      ["TERMS", "ModelTerms"],
      ["TALLY", "BuyerTally"],
    ] as const) {
      const members = structFields(settlement, struct);
      const named = [...constants.keys()].filter((name) => name.startsWith(`${prefix}_`));
      expect(named.length, `${prefix}_* constants`).to.be.greaterThan(0);
      for (const name of named) {
        if (name === `${prefix}_SIZE`) {
          expect(constants.get(name), name).to.equal(BigInt(members.length) * 32n);
          continue;
        }
        const index = members.findIndex((m) => `${prefix}_${screamingSnake(m)}` === name);
        expect(index, `${name} names a field of ${struct}`).to.be.gte(0);
        // A memory struct keeps field n in the word at n * 32, whatever the field's type.
        expect(constants.get(name), name).to.equal(BigInt(index) * 32n);
      }
    }
    // The record loop picks eligibleCost over otherCost by adding one word.
    expect(constants.get("TALLY_ELIGIBLE_COST")! - constants.get("TALLY_OTHER_COST")!).to.equal(32n);
    expect(constants.has("TALLY_SIZE"), "TALLY_SIZE, used to allocate the tallies").to.equal(true);
    expect(constants.get("ARRAY_DATA")).to.equal(32n);
  });

  it("DisputeEvidence's memory offsets name PriceEpoch's prices, and a receipt is one word per field", async function () {
    const disputes = contractNode(await sourceAst("contracts/Tollgate.sol:Tollgate", "contracts/DisputeEvidence.sol"), "DisputeEvidence");
    const epochFields = structFields(
      contractNode(await sourceAst("contracts/Tollgate.sol:Tollgate", "contracts/interfaces/IProviderRegistry.sol"), "IProviderRegistry"),
      "PriceEpoch",
    );
    const offsets = literalConstants(disputes, /^EPOCH_/);
    expect([...offsets.keys()]).to.deep.equal(["EPOCH_INPUT", "EPOCH_CACHED_INPUT", "EPOCH_OUTPUT"]);
    for (const [name, offset] of offsets) {
      const index = epochFields.findIndex((field) => `EPOCH_${screamingSnake(field)}` === name);
      expect(index, `${name} names a field of PriceEpoch`).to.be.gte(0);
      expect(offset, name).to.equal(BigInt(index) * 32n);
    }
    const types = await sourceAst("contracts/Tollgate.sol:Tollgate", "contracts/libraries/UsageTypes.sol");
    const receiptFields = structFields(contractNode(types, "UsageTypes"), "UsageReceipt");
    expect(literalConstants(types, /^RECEIPT_WORDS_SIZE$/).get("RECEIPT_WORDS_SIZE")).to.equal(BigInt(receiptFields.length) * 32n);
  });
});
