/**
 * The `tollgate` command line, run in-process (`runCli`) against Hardhat's chain served over HTTP, as a user
 * would run it against a node. Every command's effect is checked on-chain (or in the gateway's store), not
 * only in what it prints; every refused command is checked to have changed nothing.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre, { ethers } from "hardhat";
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { ContractFunctionRevertedError, encodeErrorResult, getAddress, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount, privateKeyToAddress } from "viem/accounts";
import { runCli } from "../../scripts/cli";
import { formatAmount, parseAmount } from "../../scripts/cli/amounts";
import { CliError, describeError } from "../../scripts/cli/errors";
import { testUsdAbi, tollgateAbi } from "../../server/chain/abis";
import { signUsageReceipt } from "../../server/chain/sign-batch";
import type { UsageReceipt } from "../../server/chain/usage-batch";
import { creditsOf, deployLocalTollgate, PRICE_NOTICE, USD, WITHDRAWAL_DELAY } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import type { TestUSD, Tollgate, TollgateCredits } from "../../typechain-types";

interface CliRun {
  code: number;
  out: string;
  err: string;
}

type Env = Record<string, string | undefined>;

async function run(args: string[], env: Env = {}): Promise<CliRun> {
  let out = "";
  let err = "";
  const code = await runCli(args, { env, stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) } });
  return { code, out, err };
}

function expectOk(result: CliRun): CliRun {
  expect(result.code, `exit code; stderr: ${result.err}`).to.equal(0);
  return result;
}

/** Every tx hash a command printed, each checked to be a mined, successful transaction. */
async function printedTransactions(result: CliRun): Promise<string[]> {
  const hashes = [...result.out.matchAll(/tx (0x[0-9a-f]{64})/g)].map((match) => match[1]);
  for (const hash of hashes) {
    const receipt = await ethers.provider.getTransactionReceipt(hash);
    expect(receipt?.status, `receipt of ${hash}`).to.equal(1);
  }
  return hashes;
}

async function fundEth(address: string): Promise<void> {
  await hre.network.provider.send("hardhat_setBalance", [address, "0x" + (10n ** 20n).toString(16)]);
}

/** The private key of Hardhat's account `index` (the deployer/owner in the fixtures), from the network's mnemonic. */
function hardhatAccountKey(index: number): Hex {
  const accounts = hre.network.config.accounts as { mnemonic: string; path: string };
  return ethers.HDNodeWallet.fromPhrase(accounts.mnemonic, "", `${accounts.path}/${index}`).privateKey as Hex;
}

describe("tollgate CLI", function () {
  let rpc: RpcServer;
  let dir: string;
  let deploymentFile: string;
  let token: TestUSD;
  let tollgate: Tollgate;
  let credits: TollgateCredits;
  let tollgateAddress: Address;
  let treasury: Address;

  const providerKey = generatePrivateKey();
  const provider = privateKeyToAddress(providerKey);
  const buyerKey = generatePrivateKey();
  const buyer = privateKeyToAddress(buyerKey);
  const friend = privateKeyToAddress(generatePrivateKey());
  const gatewaySigner = privateKeyToAddress(generatePrivateKey());

  /** Runs the CLI against the test deployment, signing with `key` when given. */
  const cli = (args: string[], key?: Hex, env: Env = {}) =>
    run(["--rpc", rpc.url, "--deployment", deploymentFile, ...args], { ...(key ? { TOLLGATE_PRIVATE_KEY: key } : {}), ...env });

  let snapshot: string;

  before(async () => {
    // Restored afterwards: these tests move chain time by days, which later test files should not inherit.
    snapshot = (await hre.network.provider.send("evm_snapshot", [])) as string;
    rpc = await startRpcServer(hre.network.provider);
    const base = await deployLocalTollgate();
    token = base.token;
    tollgate = base.tollgate;
    credits = await creditsOf(tollgate);
    tollgateAddress = getAddress(await tollgate.getAddress());
    treasury = getAddress(base.treasury.address);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-cli-"));
    deploymentFile = path.join(dir, "deployment.json");
    fs.writeFileSync(
      deploymentFile,
      JSON.stringify({ network: "hardhat", chainId: Number(base.chainId), tollgate: tollgateAddress, paymentToken: await token.getAddress() }),
    );
    for (const address of [provider, buyer]) await fundEth(address);
    await token.mint(buyer, USD(100));
  });

  after(async () => {
    await rpc?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (snapshot) await hre.network.provider.send("evm_revert", [snapshot]);
  });

  describe("provider", function () {
    it("register, list-model, define-plan and authorize-signer set up the registry", async () => {
      const registered = expectOk(await cli(["provider", "register", provider, "ipfs://provider-meta"], providerKey));
      expect(registered.out).to.contain("registered provider 1");
      expect(await printedTransactions(registered)).to.have.length(1);
      const view = await tollgate.providerOf(1);
      expect(view.owner).to.equal(provider);
      expect(view.payout).to.equal(provider);

      const small = expectOk(await cli(["provider", "list-model", "1", "small-model", "--input", "0.15", "--cached-input", "0.075", "--output", "0.6"], providerKey));
      expect(small.out).to.contain("listed model 1");
      expect(small.out).to.contain("0.15 tUSD input / 0.075 tUSD cached input / 0.6 tUSD output");
      const smallEpoch = await tollgate.priceEpochOf(1, 0);
      expect([smallEpoch.input, smallEpoch.cachedInput, smallEpoch.output]).to.deep.equal([150_000n, 75_000n, 600_000n]);

      // Without --cached-input, cached input costs what input costs.
      expectOk(await cli(["provider", "list-model", "1", "large-model", "--input", "2.5", "--output", "10"], providerKey));
      const largeEpoch = await tollgate.priceEpochOf(2, 0);
      expect([largeEpoch.input, largeEpoch.cachedInput, largeEpoch.output]).to.deep.equal([2_500_000n, 2_500_000n, 10_000_000n]);

      const plan = expectOk(await cli(["provider", "define-plan", "1", "--price", "0.9", "--value", "1", "--models", "1"], providerKey));
      expect(plan.out).to.contain("defined credit plan 1");
      const defined = await tollgate.creditPlanOf(1);
      expect([defined.providerId, defined.pricePerCredit, defined.valuePerCredit, defined.modelMask, defined.expiresAt]).to.deep.equal([
        1n,
        900_000n,
        1_000_000n,
        1n,
        0n,
      ]);

      expectOk(await cli(["provider", "authorize-signer", "1", gatewaySigner], providerKey));
      const signer = await tollgate.signerOf(gatewaySigner);
      expect([signer.providerId, signer.authorized, signer.nextSequence]).to.deep.equal([1n, true, 0n]);
    });

    it("set-price schedules the change after the notice period and keeps unnamed prices", async () => {
      const result = expectOk(await cli(["provider", "set-price", "1", "--output", "0.5", "--json"], providerKey));
      const printed = JSON.parse(result.out) as { effectiveFrom: string; epochIndex: string };
      const epoch = await tollgate.priceEpochOf(1, 1);
      const minedAt = BigInt(await time.latest());
      expect(BigInt(epoch.effectiveFrom)).to.equal(minedAt + PRICE_NOTICE);
      expect(printed.effectiveFrom).to.equal(epoch.effectiveFrom.toString());
      expect(printed.epochIndex).to.equal("1");
      expect([epoch.input, epoch.cachedInput, epoch.output]).to.deep.equal([150_000n, 75_000n, 500_000n]);
    });

    it("a non-owner's list-model is refused with the registry's custom error, decoded", async () => {
      const before = await tollgate.modelCount();
      const result = await cli(["provider", "list-model", "1", "stolen", "--input", "1", "--output", "1"], buyerKey);
      expect(result.code).to.equal(1);
      expect(result.err).to.contain(`RegistryNotProviderOwner(providerId: 1, caller: ${buyer})`);
      expect(result.err).to.match(/hint: .*owner's key/);
      expect(await tollgate.modelCount()).to.equal(before);
    });

    it("bond post, show, request-withdrawal, a too-early withdraw (decoded, nothing changed) and cancel-withdrawal", async () => {
      await token.mint(provider, USD(50));
      const posted = expectOk(await cli(["provider", "bond", "post", "1", "50"], providerKey));
      expect(posted.out).to.contain("bond grew by 50 tUSD");
      expect(await printedTransactions(posted)).to.have.length(2); // approve, post
      expect([...(await tollgate.bondOf(1))]).to.deep.equal([USD(50), 0n, 0n]);

      const requested = expectOk(await cli(["provider", "bond", "request-withdrawal", "1", "20"], providerKey));
      expect(requested.out).to.contain("20 tUSD pending, withdrawable at");
      const [available, pending, withdrawableAt] = await tollgate.bondOf(1);
      expect([available, pending, withdrawableAt]).to.deep.equal([USD(30), USD(20), BigInt(await time.latest()) + 15n * 86_400n]);

      const shown = JSON.parse(expectOk(await cli(["provider", "bond", "show", "1", "--json"])).out) as {
        available: { units: string };
        pending: { units: string };
        disputeWindowSeconds: string;
      };
      expect([shown.available.units, shown.pending.units, shown.disputeWindowSeconds]).to.deep.equal([String(USD(30)), String(USD(20)), String(14 * 86_400)]);

      const block = await ethers.provider.getBlockNumber();
      const early = await cli(["provider", "bond", "withdraw", "1"], providerKey);
      expect(early.code).to.equal(1);
      expect(early.err).to.contain(`BondWithdrawalNotReady(providerId: 1, withdrawableAt: ${withdrawableAt}`);
      expect(early.err).to.match(/hint: the bond unlocks at .*provider bond withdraw/);
      expect(await ethers.provider.getBlockNumber()).to.equal(block);

      const cancelled = expectOk(await cli(["provider", "bond", "cancel-withdrawal", "1"], providerKey));
      expect(cancelled.out).to.contain("20 tUSD back in provider 1's available bond");
      expect([...(await tollgate.bondOf(1))]).to.deep.equal([USD(50), 0n, 0n]);
    });

    it("show prints models, prices, plans and signers as the chain has them", async () => {
      const result = expectOk(await cli(["provider", "show", "1", "--json"]));
      const shown = JSON.parse(result.out) as {
        owner: string;
        metadataURI: string;
        models: { modelId: number; name: string; prices: { output: { units: string } }; scheduled: unknown[] }[];
        plans: { planId: string; modelIds: number[]; pricePerCredit: { formatted: string } }[];
        signers: { signer: string; authorized: boolean }[];
      };
      expect(shown.owner).to.equal(provider);
      expect(shown.metadataURI).to.equal("ipfs://provider-meta");
      expect(shown.models.map((m) => [m.modelId, m.name])).to.deep.equal([
        [1, "small-model"],
        [2, "large-model"],
      ]);
      expect(shown.models[0].prices.output.units).to.equal("600000");
      expect(shown.models[0].scheduled).to.have.length(1);
      expect(shown.plans.map((p) => [p.planId, p.modelIds, p.pricePerCredit.formatted])).to.deep.equal([["1", [1], "0.9 tUSD"]]);
      expect(shown.signers).to.deep.equal([{ signer: gatewaySigner, authorized: true, nextSequence: "0" }]);
    });
  });

  describe("buyer", function () {
    it("deposit approves the vault, deposits, and prints the new balance", async () => {
      const result = expectOk(await cli(["buyer", "deposit", "10"], buyerKey));
      expect(await printedTransactions(result)).to.have.length(2); // approve, deposit
      expect((await tollgate.accountOf(buyer)).balance).to.equal(USD(10));
      expect(await token.balanceOf(buyer)).to.equal(USD(90));
      expect(await token.allowance(buyer, tollgateAddress)).to.equal(0n);
      expect(result.out).to.contain(`deposited 10 tUSD; vault balance of ${buyer} is now 10 tUSD`);
    });

    it("deposit-permit deposits with a signature and no approve transaction", async () => {
      const nonceBefore = await token.nonces(buyer);
      const result = expectOk(await cli(["buyer", "deposit-permit", "5.5"], buyerKey));
      expect(await printedTransactions(result)).to.have.length(1);
      expect((await tollgate.accountOf(buyer)).balance).to.equal(USD(15.5));
      expect(await token.balanceOf(buyer)).to.equal(USD(84.5));
      expect(await token.nonces(buyer)).to.equal(nonceBefore + 1n);
      expect(await token.allowance(buyer, tollgateAddress)).to.equal(0n);
      expect(result.out).to.contain("vault balance of");
      expect(result.out).to.contain("is now 15.5 tUSD");
    });

    it("buy-credits pays from the wallet, or from the vault balance with --from-balance", async () => {
      const fromWallet = expectOk(await cli(["buyer", "buy-credits", "1", "3"], buyerKey));
      expect(fromWallet.out).to.contain("for 2.7 tUSD");
      expect(await credits.balanceOf(buyer, 1)).to.equal(3n);
      expect(await token.balanceOf(buyer)).to.equal(USD(84.5) - USD(2.7));
      expect((await tollgate.accountOf(buyer)).balance).to.equal(USD(15.5));

      expectOk(await cli(["buyer", "buy-credits", "1", "2", "--from-balance"], buyerKey));
      expect(await credits.balanceOf(buyer, 1)).to.equal(5n);
      expect((await tollgate.accountOf(buyer)).balance).to.equal(USD(15.5) - USD(1.8));
      // The provider earned both purchases minus the 2.5% fee.
      expect(await tollgate.earningsOf(1)).to.equal(USD(4.5) - (USD(2.7) * 250n + 9_999n) / 10_000n - (USD(1.8) * 250n + 9_999n) / 10_000n);
    });

    it("transfer-credits moves ERC-1155 credits to another address", async () => {
      const result = expectOk(await cli(["buyer", "transfer-credits", friend, "1", "2"], buyerKey));
      expect(result.out).to.contain(`you hold 3 credits of plan 1, ${friend} holds 2`);
      expect(await credits.balanceOf(buyer, 1)).to.equal(3n);
      expect(await credits.balanceOf(friend, 1)).to.equal(2n);
    });

    it("transfer-credits of more than is held is refused before sending", async () => {
      const block = await ethers.provider.getBlockNumber();
      const result = await cli(["buyer", "transfer-credits", friend, "1", "4"], buyerKey);
      expect(result.code).to.equal(1);
      expect(result.err).to.contain("you hold 3 credits of plan 1, fewer than 4");
      expect(await ethers.provider.getBlockNumber()).to.equal(block);
    });

    it("set-spending-limit caps a provider per period", async () => {
      expectOk(await cli(["buyer", "set-spending-limit", "1", "25", "1d"], buyerKey));
      const limit = await tollgate.spendingLimitOf(buyer, 1);
      expect([limit.limitPerPeriod, limit.period]).to.deep.equal([USD(25), 86_400n]);
    });

    it("withdraw request, a too-early execute (custom error decoded, nothing changed), cancel, then execute after the delay", async () => {
      const start = await tollgate.accountOf(buyer);
      const requested = expectOk(await cli(["buyer", "withdraw", "request", "4"], buyerKey));
      const pending = await tollgate.accountOf(buyer);
      expect(pending.pendingWithdrawal).to.equal(USD(4));
      expect(pending.balance).to.equal(start.balance - USD(4));
      expect(pending.withdrawableAt).to.equal(BigInt(await time.latest()) + WITHDRAWAL_DELAY);
      expect(requested.out).to.contain("pending withdrawal now 4 tUSD, withdrawable at");

      const block = await ethers.provider.getBlockNumber();
      const early = await cli(["buyer", "withdraw", "execute"], buyerKey);
      expect(early.code).to.equal(1);
      expect(early.err).to.contain(`VaultWithdrawalNotReady(buyer: ${buyer}, withdrawableAt: ${pending.withdrawableAt}`);
      expect(early.err).to.match(/hint: the withdrawal unlocks at .*buyer withdraw execute/);
      expect(await ethers.provider.getBlockNumber()).to.equal(block);
      expect(await tollgate.accountOf(buyer)).to.deep.equal(pending);

      const cancelled = expectOk(await cli(["buyer", "withdraw", "cancel"], buyerKey));
      expect(cancelled.out).to.contain("returned 4 tUSD to the balance");
      const back = await tollgate.accountOf(buyer);
      expect([back.balance, back.pendingWithdrawal]).to.deep.equal([start.balance, 0n]);

      expectOk(await cli(["buyer", "withdraw", "request", "1.25"], buyerKey));
      await time.increase(WITHDRAWAL_DELAY);
      const wallet = await token.balanceOf(buyer);
      const executed = expectOk(await cli(["buyer", "withdraw", "execute"], buyerKey));
      expect(executed.out).to.contain("withdrew 1.25 tUSD");
      expect(await token.balanceOf(buyer)).to.equal(wallet + USD(1.25));
      expect((await tollgate.accountOf(buyer)).pendingWithdrawal).to.equal(0n);
    });

    it("balance prints what the chain holds: wallet, vault, credits, spending limit", async () => {
      const account = await tollgate.accountOf(buyer);
      const wallet = await token.balanceOf(buyer);
      const human = expectOk(await cli(["buyer", "balance"], buyerKey));
      const fmt = (units: bigint) => `${ethers.formatUnits(units, 6).replace(/\.0$/, "")} tUSD`;
      expect(human.out).to.match(new RegExp(`wallet +${fmt(wallet).replace(".", "\\.")}\\n`));
      expect(human.out).to.match(new RegExp(`vault balance +${fmt(account.balance).replace(".", "\\.")}\\n`));
      expect(human.out).to.contain("credits plan 1      3 (provider 1, worth 1 tUSD each, never expire)");
      expect(human.out).to.contain("provider 1: 25 tUSD per 1d");

      // Another account needs no key, only --address.
      const other = JSON.parse(expectOk(await cli(["buyer", "balance", "--address", friend, "--json"])).out) as {
        buyer: string;
        balance: { units: string };
        credits: { planId: string; credits: string }[];
        spendingLimits: unknown[];
      };
      expect(other.buyer).to.equal(friend);
      expect(other.balance.units).to.equal("0");
      expect(other.credits).to.deep.equal([
        { planId: "1", providerId: 1, credits: "2", valuePerCredit: { units: "1000000", formatted: "1 tUSD" }, change: { units: "0", formatted: "0 tUSD" }, expiresAt: 0 },
      ]);
      expect(other.spendingLimits).to.deep.equal([]);
    });

    it("claim-awards: balance shows an award and when it can be claimed; too early is refused (decoded, nothing changed), after the delay it pays the wallet", async () => {
      // A gateway key of provider 1 signs two receipts for one sequence naming the buyer: anyone may prove it.
      const key = privateKeyToAccount(generatePrivateKey());
      expectOk(await cli(["provider", "authorize-signer", "1", key.address], providerKey));
      const receipt: UsageReceipt = {
        sequence: 0n, buyer, modelId: 1, inputTokens: 10, cachedInputTokens: 0, outputTokens: 10, servedAt: await time.latest(),
        inputPrice: 0n, cachedInputPrice: 0n, outputPrice: 0n, cost: 0n, contentHash: ethers.id("one response") as Hex,
      };
      const twin = { ...receipt, contentHash: ethers.id("another response") as Hex };
      const deployment = { chainId: BigInt((await ethers.provider.getNetwork()).chainId), address: tollgateAddress };
      const [bondAvailable, bondPending] = await tollgate.bondOf(1);
      await tollgate.proveEquivocation(receipt, await signUsageReceipt(key, deployment, receipt), twin, await signUsageReceipt(key, deployment, twin));
      const penalty = ((bondAvailable + bondPending) * 1_000n) / 10_000n;
      const [awarded, claimableAt] = await tollgate.disputeAwardOf(buyer);
      expect(awarded).to.equal(penalty);

      const shown = expectOk(await cli(["buyer", "balance"], buyerKey));
      expect(shown.out).to.match(new RegExp(`dispute award +${ethers.formatUnits(penalty, 6).replace(/\.0$/, "")} tUSD, claimable at .*; not spendable until claimed`));
      const json = JSON.parse(expectOk(await cli(["buyer", "balance", "--json"], buyerKey)).out) as { disputeAward: { units: string }; disputeAwardClaimableAt: string };
      expect([json.disputeAward.units, json.disputeAwardClaimableAt]).to.deep.equal([String(penalty), String(claimableAt)]);

      const block = await ethers.provider.getBlockNumber();
      const early = await cli(["buyer", "claim-awards"], buyerKey);
      expect(early.code).to.equal(1);
      expect(early.err).to.contain(`DisputeAwardNotReady(beneficiary: ${buyer}, claimableAt: ${claimableAt}`);
      expect(early.err).to.match(/hint: .*claimed from .*BOND_WITHDRAWAL_DELAY.*buyer claim-awards/);
      expect(await ethers.provider.getBlockNumber()).to.equal(block);
      expect([...(await tollgate.disputeAwardOf(buyer))]).to.deep.equal([awarded, claimableAt]);

      await time.increaseTo(claimableAt);
      const wallet = await token.balanceOf(buyer);
      const claimed = expectOk(await cli(["buyer", "claim-awards"], buyerKey));
      expect(claimed.out).to.contain(`claimed ${ethers.formatUnits(penalty, 6).replace(/\.0$/, "")} tUSD`);
      expect(await token.balanceOf(buyer)).to.equal(wallet + penalty);
      expect([...(await tollgate.disputeAwardOf(buyer))]).to.deep.equal([0n, 0n]);
      const none = await cli(["buyer", "claim-awards"], buyerKey);
      expect(none.code).to.equal(1);
      expect(none.err).to.contain(`DisputeNoAward(beneficiary: ${buyer})`);
    });

    for (const [amount, message] of [
      ["1.2345678", 'deposit amount "1.2345678" has 7 decimal places; tUSD has 6'],
      ["-1", 'deposit amount "-1" is negative'],
      ["abc", 'deposit amount "abc" is not a number'],
      ["0", "deposit amount must be more than zero"],
    ] as const) {
      it(`deposit ${amount} is refused with a clear message and changes nothing`, async () => {
        const block = await ethers.provider.getBlockNumber();
        const before = await tollgate.accountOf(buyer);
        const wallet = await token.balanceOf(buyer);
        const result = await cli(["buyer", "deposit", amount], buyerKey);
        expect(result.code).to.equal(1);
        expect(result.err).to.contain(`error: ${message}`);
        expect(result.err).to.contain("hint:");
        expect(await ethers.provider.getBlockNumber()).to.equal(block);
        expect(await tollgate.accountOf(buyer)).to.deep.equal(before);
        expect(await token.balanceOf(buyer)).to.equal(wallet);
      });
    }

    it("--json errors are one JSON object on stderr with the decoded error", async () => {
      const result = await cli(["buyer", "buy-credits", "9", "1", "--json"], buyerKey);
      expect(result.code).to.equal(1);
      const { error } = JSON.parse(result.err) as { error: { error: string; args: Record<string, string>; hint: string } };
      expect(error.error).to.equal("CreditsUnknownPlan");
      expect(error.args).to.deep.equal({ planId: "9" });
      expect(error.hint).to.contain("provider show");
    });
  });

  describe("keys and their sources", function () {
    it("no command takes a key: --private-key is no option, and a key-shaped argument is refused unechoed", async () => {
      const help = expectOk(await cli(["buyer", "deposit", "--help"]));
      expect(help.out).to.contain("Usage: tollgate buyer deposit");
      expect(help.out).not.to.match(/private|--key|secret/i);

      const before = await tollgate.accountOf(buyer);
      const block = await ethers.provider.getBlockNumber();
      for (const args of [
        ["buyer", "deposit", "1", "--private-key", buyerKey],
        ["buyer", "deposit", "1", `--private-key=${buyerKey}`],
        ["buyer", "deposit", "1", buyerKey.slice(2)],
      ]) {
        const result = await cli(args);
        expect(result.code, args.join(" ")).to.equal(1);
        expect(result.err).to.contain("refusing a private key");
        expect(result.err).to.contain("TOLLGATE_PRIVATE_KEY");
        expect(result.err + result.out).not.to.contain(buyerKey.slice(2));
      }
      // Even without the guard, commander knows no such option.
      const unknown = await cli(["buyer", "deposit", "1", "--from-key", "x"], buyerKey);
      expect(unknown.code).to.equal(1);
      expect(unknown.err).to.contain("unknown option '--from-key'");
      expect(await ethers.provider.getBlockNumber()).to.equal(block);
      expect(await tollgate.accountOf(buyer)).to.deep.equal(before);
    });

    it("a missing key names the environment variables to set", async () => {
      const block = await ethers.provider.getBlockNumber();
      const result = await cli(["buyer", "deposit", "1"]);
      expect(result.code).to.equal(1);
      expect(result.err).to.contain("error: no signing key");
      for (const name of ["TOLLGATE_PRIVATE_KEY", "TOLLGATE_KEYSTORE", "TOLLGATE_KEYSTORE_PASSWORD"]) expect(result.err).to.contain(name);
      expect(await ethers.provider.getBlockNumber()).to.equal(block);
    });

    it("a malformed TOLLGATE_PRIVATE_KEY is refused without echoing it", async () => {
      const result = await cli(["buyer", "deposit", "1"], undefined, { TOLLGATE_PRIVATE_KEY: "0xdeadbeef" });
      expect(result.code).to.equal(1);
      expect(result.err).to.contain("TOLLGATE_PRIVATE_KEY is not a private key");
      expect(result.err).not.to.contain("deadbeef");
    });

    it("keystore create writes an encrypted keystore that signs deposits; a wrong password or an existing file is refused", async () => {
      const file = path.join(dir, "keys", "buyer.json");
      const password = "correct horse battery staple";
      const created = expectOk(await run(["keystore", "create", file, "--json"], { TOLLGATE_KEYSTORE_PASSWORD: password }));
      const { address } = JSON.parse(created.out) as { address: Address };
      // Geth's Web3 Secret Storage layout, which ethers writes with a capital "Crypto".
      const json = JSON.parse(fs.readFileSync(file, "utf8")) as { address: string; Crypto?: { kdf: string }; crypto?: { kdf: string } };
      expect(getAddress(`0x${json.address}`)).to.equal(address);
      expect((json.Crypto ?? json.crypto)?.kdf).to.equal("scrypt");
      expect(fs.readFileSync(file, "utf8")).not.to.contain(password);
      expect(fs.statSync(file).mode & 0o777).to.equal(0o600);

      const env = { TOLLGATE_KEYSTORE: file, TOLLGATE_KEYSTORE_PASSWORD: password };
      expect(expectOk(await run(["keystore", "address"], env)).out).to.contain(address);

      await fundEth(address);
      await token.mint(address, USD(3));
      expectOk(await cli(["buyer", "deposit", "2"], undefined, env));
      expect((await tollgate.accountOf(address)).balance).to.equal(USD(2));

      const wrong = await cli(["buyer", "deposit", "1"], undefined, { ...env, TOLLGATE_KEYSTORE_PASSWORD: "not the password" });
      expect(wrong.code).to.equal(1);
      expect(wrong.err).to.contain(`cannot decrypt the keystore ${file}`);
      expect((await tollgate.accountOf(address)).balance).to.equal(USD(2));

      const contents = fs.readFileSync(file, "utf8");
      const again = await run(["keystore", "create", file], { TOLLGATE_KEYSTORE_PASSWORD: password });
      expect(again.code).to.equal(1);
      expect(again.err).to.contain("already exists");
      expect(fs.readFileSync(file, "utf8")).to.equal(contents);

      const both = await cli(["buyer", "balance"], buyerKey, env);
      expect(both.code).to.equal(1);
      expect(both.err).to.contain("both TOLLGATE_PRIVATE_KEY and TOLLGATE_KEYSTORE are set");
    });
  });

  describe("operator", function () {
    const ownerKey = () => hardhatAccountKey(0);

    it("status shows the chain, pause state, fee, treasury, accrued fees and a signer", async () => {
      const result = expectOk(await cli(["operator", "status", "--signer", gatewaySigner, "--json"]));
      const status = JSON.parse(result.out) as Record<string, unknown> & { signer: Record<string, unknown>; protocolFeesAccrued: { units: string } };
      expect(status.chainId).to.equal(31337);
      expect(status.blockNumber).to.equal((await ethers.provider.getBlockNumber()).toString());
      expect(status.paused).to.equal(false);
      expect(status.protocolFeeBps).to.equal("250");
      expect(status.treasury).to.equal(treasury);
      expect(status.protocolFeesAccrued.units).to.equal((await tollgate.protocolFeesAccrued()).toString());
      expect(status.signer).to.deep.equal({ address: gatewaySigner, providerId: 1, authorized: true, nextSequence: "0", compromised: false });
    });

    it("pause stops credit purchases (EnforcedPause decoded) and unpause resumes them; only the owner may", async () => {
      const notOwner = await cli(["operator", "pause"], buyerKey);
      expect(notOwner.code).to.equal(1);
      expect(notOwner.err).to.contain(`OwnableUnauthorizedAccount(account: ${buyer})`);
      expect(await tollgate.paused()).to.equal(false);

      expectOk(await cli(["operator", "pause"], ownerKey()));
      expect(await tollgate.paused()).to.equal(true);
      expect(expectOk(await cli(["operator", "status"])).out).to.contain("paused            YES");

      const held = await credits.balanceOf(buyer, 1);
      const refused = await cli(["buyer", "buy-credits", "1", "1", "--from-balance"], buyerKey);
      expect(refused.code).to.equal(1);
      expect(refused.err).to.contain("EnforcedPause()");
      expect(refused.err).to.contain("deposits and withdrawals still work");
      expect(await credits.balanceOf(buyer, 1)).to.equal(held);

      expectOk(await cli(["operator", "unpause"], ownerKey()));
      expect(await tollgate.paused()).to.equal(false);
    });

    it("an unreachable RPC says where the chain was expected", async () => {
      const result = await run(["--rpc", "http://127.0.0.1:1", "--deployment", deploymentFile, "operator", "status"]);
      expect(result.code).to.equal(1);
      expect(result.err).to.contain("cannot reach the chain at http://127.0.0.1:1");
      expect(result.err).to.contain("is the chain running at http://127.0.0.1:1?");
    });

    it("a deployment file of another chain is refused", async () => {
      const other = path.join(dir, "other-chain.json");
      fs.writeFileSync(other, JSON.stringify({ chainId: 1, tollgate: tollgateAddress }));
      const result = await run(["--rpc", rpc.url, "--deployment", other, "operator", "status"]);
      expect(result.code).to.equal(1);
      expect(result.err).to.contain("is for chain 1, but the RPC at");
    });

    it("deploy runs the shared deploy step and writes a deployment file the other commands use", async () => {
      const out = path.join(dir, "deployed.json");
      const result = await run(["--rpc", rpc.url, "--deployment", out, "operator", "deploy", "--network", "hardhat", "--out", out, "--fee-bps", "100", "--json"]);
      expectOk(result);
      const written = JSON.parse(fs.readFileSync(out, "utf8")) as { tollgate: Address; chainId: number; parameters: { protocolFeeBps: number } };
      expect(written.chainId).to.equal(31337);
      expect(written.parameters.protocolFeeBps).to.equal(100);
      const deployed = await ethers.getContractAt("Tollgate", written.tollgate);
      expect(await deployed.protocolFeeBps()).to.equal(100n);
      const status = JSON.parse(expectOk(await run(["--rpc", rpc.url, "--deployment", out, "operator", "status", "--json"])).out) as { tollgate: string; protocolFeeBps: string };
      expect(status.tollgate).to.equal(written.tollgate);
      expect(status.protocolFeeBps).to.equal("100");

      // The deploy step made the test token, so its faucet works there, and only there.
      const deployedToken = await ethers.getContractAt("TestUSD", await deployed.paymentToken());
      expectOk(await run(["--rpc", rpc.url, "--deployment", out, "buyer", "faucet", "7.5"], { TOLLGATE_PRIVATE_KEY: buyerKey }));
      expect(await deployedToken.balanceOf(buyer)).to.equal(USD(7.5));
      const wallet = await token.balanceOf(buyer);
      const refused = await cli(["buyer", "faucet", "1"], buyerKey);
      expect(refused.code).to.equal(1);
      expect(refused.err).to.contain("is not a test token of this deployment");
      expect(await token.balanceOf(buyer)).to.equal(wallet);
    });

    it("deploy to a network other than the one this process runs is refused", async () => {
      const result = await run(["operator", "deploy", "--network", "localhost", "--out", path.join(dir, "never.json")]);
      expect(result.code).to.equal(1);
      expect(result.err).to.contain('already runs Hardhat on network "hardhat"');
      expect(fs.existsSync(path.join(dir, "never.json"))).to.equal(false);
    });
  });
});

describe("tollgate CLI: amounts and errors", function () {
  const tUSD = { decimals: 6, symbol: "tUSD" };
  const wei = { decimals: 18, symbol: "ETH" };

  it("parses token units exactly, with the token's decimals", () => {
    expect(parseAmount("12.5", tUSD)).to.equal(12_500_000n);
    expect(parseAmount(" 0.000001 ", tUSD)).to.equal(1n);
    expect(parseAmount(".5", tUSD)).to.equal(500_000n);
    expect(parseAmount("7.", tUSD)).to.equal(7_000_000n);
    // Trailing zeros add no precision, so they do not count against the token's decimals.
    expect(parseAmount("1.5000000", tUSD)).to.equal(1_500_000n);
    expect(parseAmount("0", tUSD, { allowZero: true })).to.equal(0n);
    // Beyond a double's 53 bits: a float would round this.
    expect(parseAmount("123456789.123456789012345678", wei)).to.equal(123_456_789_123_456_789_012_345_678n);
  });

  it("rejects more decimals than the token has, negatives, zero where it must not be, and garbage", () => {
    const refused = (text: string, token = tUSD) => {
      try {
        parseAmount(text, token, { what: "amount" });
      } catch (error) {
        expect(error).to.be.instanceOf(CliError);
        return (error as CliError).message;
      }
      throw new Error(`"${text}" was accepted`);
    };
    expect(refused("1.2345678")).to.equal('amount "1.2345678" has 7 decimal places; tUSD has 6');
    expect(refused("0.0000001")).to.equal('amount "0.0000001" has 7 decimal places; tUSD has 6');
    expect(refused("-1")).to.equal('amount "-1" is negative');
    expect(refused("0")).to.equal("amount must be more than zero");
    for (const garbage of ["abc", "", ".", "1e6", "0x10", "1,5", "+1", "1.2.3", "NaN", "Infinity", "١"]) {
      expect(refused(garbage)).to.equal(`amount "${garbage}" is not a number`);
    }
    expect(refused((2n ** 256n).toString(), { decimals: 0, symbol: "X" })).to.contain("too large");
  });

  it("formats base units with decimals and symbol, and parses back what it formats", () => {
    expect(formatAmount(12_500_000n, tUSD)).to.equal("12.5 tUSD");
    expect(formatAmount(1n, tUSD)).to.equal("0.000001 tUSD");
    expect(formatAmount(0n, tUSD)).to.equal("0 tUSD");
    expect(formatAmount(100_000_000n, tUSD)).to.equal("100 tUSD");
    expect(formatAmount(-2_500_000n, tUSD)).to.equal("-2.5 tUSD");
    for (const units of [1n, 10n, 999_999n, 1_000_001n, 123_456_789_012n, 2n ** 200n]) {
      expect(parseAmount(formatAmount(units, tUSD).replace(" tUSD", ""), tUSD)).to.equal(units);
    }
  });

  it("decodes a token's custom error that bubbled up through Tollgate, with amounts formatted in the hint", () => {
    // viem decodes against the called contract's ABI only (Tollgate's); the token's error needs the others.
    const data = encodeErrorResult({
      abi: testUsdAbi,
      errorName: "ERC20InsufficientAllowance",
      args: ["0x5FbDB2315678afecb367f032d93F642f64180aa3", 1_000_000n, 2_500_000n],
    });
    const reverted = new ContractFunctionRevertedError({ abi: tollgateAbi, data, functionName: "deposit" });
    const report = describeError(reverted, { rpcUrl: "http://x", formatAmount: (v) => formatAmount(v, tUSD) });
    expect(report.error).to.equal("ERC20InsufficientAllowance");
    expect(report.args).to.deep.equal({ spender: "0x5FbDB2315678afecb367f032d93F642f64180aa3", allowance: "1000000", needed: "2500000" });
    expect(report.message).to.equal(
      "the contract reverted with ERC20InsufficientAllowance(spender: 0x5FbDB2315678afecb367f032d93F642f64180aa3, allowance: 1000000, needed: 2500000)",
    );
    expect(report.hint).to.contain("may spend only 1 tUSD of your tokens but needs 2.5 tUSD");
  });
});

describe("tollgate CLI: API keys through a running gateway", function () {
  let h: GatewayHarness;
  let rpc: RpcServer;
  const buyerKey = generatePrivateKey();
  const buyer = privateKeyToAddress(buyerKey);

  before(async () => {
    h = await startGatewayHarness();
    rpc = await startRpcServer(hre.network.provider);
  });
  after(async () => {
    await h?.close();
    await rpc?.close();
  });

  const cli = (args: string[], env: Env = {}) =>
    run(["--rpc", rpc.url, "--deployment", path.join(h.dir, "deployment.json"), "--gateway", h.url, ...args], { TOLLGATE_PRIVATE_KEY: buyerKey, ...env });

  const gatewayBalance = (key: string) => fetch(`${h.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });

  it("keys create prints the key once, keys list shows it, keys revoke stops it", async () => {
    const created = expectOk(await cli(["buyer", "keys", "create", "--label", "cli key", "--spend-cap", "2.5", "--models", "small-model", "--tags", "team:cli,env:test"]));
    const key = /\n {2}(tg_[A-Za-z0-9_-]{43})\n/.exec(created.out)?.[1];
    expect(key, created.out).to.be.a("string");
    expect(created.out).to.contain("spend cap 2.5 tUSD");
    expect(created.out).to.contain("only time the key is shown");
    const id = /created API key (key_[A-Za-z0-9_-]+) for/.exec(created.out)?.[1];

    const stored = h.gateway.ctx.store.listApiKeys(buyer);
    expect(stored.map((k) => [k.id, k.label, k.spendCap, k.models, k.tags, k.revokedAt])).to.deep.equal([
      [id, "cli key", 2_500_000n, ["small-model"], ["team:cli", "env:test"], null],
    ]);
    const live = await gatewayBalance(key!);
    expect(live.status).to.equal(200);
    expect(((await live.json()) as { buyer: string }).buyer).to.equal(buyer);

    // The gateway's view joins the on-chain one in `buyer balance` when the key is in the environment.
    const balance = expectOk(await cli(["buyer", "balance"], { TOLLGATE_API_KEY: key }));
    expect(balance.out).to.contain(`gateway ${h.url} (key ${id})`);
    expect(balance.out).to.contain("key spend cap       2.5 tUSD, 0 tUSD spent");

    const listed = JSON.parse(expectOk(await cli(["buyer", "keys", "list", "--json"])).out) as { keys: { id: string; label: string; revoked_at: number | null; key?: string }[] };
    expect(listed.keys.map((k) => [k.id, k.label, k.revoked_at, k.key])).to.deep.equal([[id, "cli key", null, undefined]]);

    const unknown = await cli(["buyer", "keys", "revoke", "key_doesnotexist"]);
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.contain("key_not_found");
    expect(unknown.err).to.contain("keys list");

    expectOk(await cli(["buyer", "keys", "revoke", id!]));
    expect(h.gateway.ctx.store.listApiKeys(buyer)[0].revokedAt).to.be.a("number");
    expect((await gatewayBalance(key!)).status).to.equal(401);
    expect(expectOk(await cli(["buyer", "keys", "list"])).out).to.match(new RegExp(`${id} {2}revoked`));
  });

  it("an unreachable gateway is named with a hint", async () => {
    const result = await run(["--deployment", path.join(h.dir, "deployment.json"), "--gateway", "http://127.0.0.1:1", "buyer", "keys", "list"], {
      TOLLGATE_PRIVATE_KEY: buyerKey,
    });
    expect(result.code).to.equal(1);
    expect(result.err).to.contain("cannot reach the gateway at http://127.0.0.1:1");
    expect(result.err).to.contain("is the gateway running");
  });
});
