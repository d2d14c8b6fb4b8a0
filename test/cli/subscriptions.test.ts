/**
 * `tollgate provider subscription-plan define|list` and `tollgate buyer subscribe|subscription|unsubscribe|renew`,
 * run in-process as a user would against Hardhat's chain over JSON-RPC: each command's effect is checked on the
 * chain, and each refused command is checked to change nothing.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import hre, { ethers } from "hardhat";
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { getAddress, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { runCli } from "../../scripts/cli";
import { deployMarketplace, USD, type Marketplace } from "../../scripts/lib/marketplace-fixtures";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import type { TollgateSubscriptions } from "../../typechain-types";

async function run(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(args, { env, stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) } });
  return { code, out, err };
}

/** The private key of Hardhat's account `index`, from the network's mnemonic. */
function hardhatAccountKey(index: number): Hex {
  const accounts = hre.network.config.accounts as { mnemonic: string; path: string };
  return ethers.HDNodeWallet.fromPhrase(accounts.mnemonic, "", `${accounts.path}/${index}`).privateKey as Hex;
}

const DAY = 24 * 3600;

describe("tollgate CLI: subscriptions", function () {
  let m: Marketplace;
  let rpc: RpcServer;
  let dir: string;
  let deploymentFile: string;
  let subs: TollgateSubscriptions;
  const providerKey = hardhatAccountKey(2); // the fixtures' provider owner
  const buyerKey = generatePrivateKey();
  const buyer = privateKeyToAddress(buyerKey);
  const keeperKey = generatePrivateKey();
  let snapshot: string;

  const cli = (args: string[], key?: Hex) => run(["--rpc", rpc.url, "--deployment", deploymentFile, ...args], key ? { TOLLGATE_PRIVATE_KEY: key } : {});
  const ok = async (args: string[], key?: Hex) => {
    const result = await cli(args, key);
    expect(result.code, `exit code; stderr: ${result.err}`).to.equal(0);
    return result;
  };
  const refused = async (args: string[], key: Hex | undefined, message: string) => {
    const result = await cli(args, key);
    expect(result.code, result.out).to.equal(1);
    expect(result.err).to.contain(message);
    return result;
  };

  before(async () => {
    snapshot = (await hre.network.provider.send("evm_snapshot", [])) as string;
    m = await deployMarketplace();
    expect(privateKeyToAddress(providerKey)).to.equal(getAddress(m.provider.address));
    rpc = await startRpcServer(hre.network.provider);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-cli-subs-"));
    deploymentFile = path.join(dir, "deployment.json");
    const tollgate = getAddress(await m.tollgate.getAddress());
    fs.writeFileSync(deploymentFile, JSON.stringify({ network: "hardhat", chainId: Number(m.chainId), tollgate, paymentToken: await m.token.getAddress() }));
    subs = (await ethers.getContractAt("TollgateSubscriptions", await m.tollgate.subscriptions())) as unknown as TollgateSubscriptions;
    for (const address of [buyer, privateKeyToAddress(keeperKey)]) await hre.network.provider.send("hardhat_setBalance", [address, "0x" + (10n ** 20n).toString(16)]);
    await m.token.mint(buyer, USD(100));
  });

  after(async () => {
    await rpc?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (snapshot) await hre.network.provider.send("evm_revert", [snapshot]);
  });

  it("provider subscription-plan define sells a plan and says unused included usage does not roll over; bad input changes nothing", async () => {
    const defined = await ok(["provider", "subscription-plan", "define", "1", "--period", "1d", "--price", "1", "--included", "0.5", "--models", `${m.smallModel},${m.largeModel}`], providerKey);
    expect(defined.out).to.contain("defined subscription plan 1");
    expect(defined.out).to.contain("does not roll over");
    const plan = await subs.subscriptionPlanOf(1);
    expect([plan.providerId, plan.period, plan.price, plan.includedValue, plan.modelMask, plan.overage]).to.deep.equal([1n, BigInt(DAY), USD(1), USD(0.5), 3n, 0n]);
    await ok(["provider", "subscription-plan", "define", "1", "--period", "1w", "--price", "2", "--included", "3", "--models", `${m.smallModel}`, "--overage", "refuse"], providerKey);

    await refused(["provider", "subscription-plan", "define", "1", "--period", "1d", "--price", "1", "--included", "1", "--models", "1", "--overage", "sometimes"], providerKey, '--overage "sometimes" is not one of bill-balance, refuse');
    await refused(["provider", "subscription-plan", "define", "1", "--period", "400d", "--price", "1", "--included", "1", "--models", "1"], providerKey, "--period");
    // Not the provider's owner: the satellite's named error, with what to do.
    const notOwner = await refused(["provider", "subscription-plan", "define", "1", "--period", "1d", "--price", "1", "--included", "1", "--models", "1"], buyerKey, "SubscriptionsNotProviderOwner");
    expect(notOwner.err).to.contain("sign with the owner's key");
    expect(await subs.subscriptionPlanCount()).to.equal(2n);
  });

  it("provider subscription-plan list shows period, price, included usage, models and the overage rule (needs no key)", async () => {
    const listed = await ok(["provider", "subscription-plan", "list", "1"]);
    expect(listed.out).to.contain("plan 1: 1 tUSD per 1d (86400s), includes 0.5 tUSD of usage per period");
    expect(listed.out).to.contain(`models ${m.smallModel} small-model, ${m.largeModel} large-model; overage billed from credits, then balance`);
    expect(listed.out).to.contain("plan 2: 2 tUSD per 7d");
    expect(listed.out).to.contain("overage refused");
    expect(listed.out).to.contain("unused included usage does not roll over");
    const json = JSON.parse((await ok(["provider", "subscription-plan", "list", "1", "--json"])).out) as { plans: { planId: string; overage: string; includedValue: { units: string }; rollsOver: boolean }[] };
    expect(json.plans.map((plan) => [plan.planId, plan.overage, plan.includedValue.units, plan.rollsOver])).to.deep.equal([["1", "billBalance", "500000", false], ["2", "refuse", "3000000", false]]);
  });

  it("buyer subscribe pays the first period from the balance; a short balance, an unknown plan and a second subscription are refused first", async () => {
    await refused(["buyer", "subscribe", "9"], buyerKey, "no subscription plan has id 9 (2 defined)");
    const short = await refused(["buyer", "subscribe", "1"], buyerKey, "your vault balance is 0 tUSD, less than the 1 tUSD the first period costs");
    expect(short.err).to.contain("tollgate buyer deposit");
    expect((await subs.subscriptionOf(buyer, 1)).id).to.equal(0n);

    await ok(["buyer", "deposit", "1.5"], buyerKey);
    const subscribed = await ok(["buyer", "subscribe", "1"], buyerKey);
    expect(subscribed.out).to.contain("subscribed (subscription 1)");
    expect(subscribed.out).to.contain("includes 0.5 tUSD of usage");
    expect(subscribed.out).to.contain("does not roll over");
    expect((await m.tollgate.accountOf(buyer)).balance).to.equal(USD(0.5));
    const sub = await subs.subscriptionOf(buyer, 1);
    expect([sub.id, sub.planId, sub.paidPeriods, sub.active, sub.cancelled]).to.deep.equal([1n, 1n, 1n, true, false]);

    await refused(["buyer", "subscribe", "2"], buyerKey, "you already hold subscription plan 1 with provider 1");
    expect((await subs.subscriptionOf(buyer, 1)).planId).to.equal(1n);
  });

  it("buyer subscription shows the plan, when it renews and the current period's included usage used on-chain", async () => {
    const shown = await ok(["buyer", "subscription"], buyerKey);
    expect(shown.out).to.contain("provider 1: plan 1 (subscription 1), 1 tUSD per 1d");
    expect(shown.out).to.contain("renews ");
    expect(shown.out).to.contain("0 tUSD of 0.5 tUSD included usage used on-chain, 0.5 tUSD left");
    expect(shown.out).to.contain("does not roll over");
    const json = JSON.parse((await ok(["buyer", "subscription", "--provider", "1", "--address", buyer, "--json"])).out) as { subscriptions: { status: string; currentPeriod: { index: number; includedRemaining: { units: string } } }[] };
    expect(json.subscriptions.map((sub) => [sub.status, sub.currentPeriod.index, sub.currentPeriod.includedRemaining.units])).to.deep.equal([["active", 0, "500000"]]);
    expect((await ok(["buyer", "subscription", "--address", privateKeyToAddress(keeperKey)])).out).to.contain("has no subscription");
  });

  it("buyer renew refuses before the period ends, then pays the next period; a keeper's renewal the balance cannot pay ends it", async () => {
    const early = await refused(["buyer", "renew"], buyerKey, "nothing is due");
    expect(early.err).to.contain("paid until");
    const sub = await subs.subscriptionOf(buyer, 1);
    await time.increaseTo(Number(sub.startedAt) + DAY);
    await ok(["buyer", "deposit", "0.6"], buyerKey); // 1.1 in the vault: one more period, not two
    const renewed = await ok(["buyer", "renew"], buyerKey);
    expect(renewed.out).to.contain("paid 1 period(s) for 1 tUSD");
    expect(renewed.out).to.contain("0.5 tUSD of included usage was left unused");
    expect((await subs.subscriptionOf(buyer, 1)).paidPeriods).to.equal(2n);

    await time.increaseTo(Number(sub.startedAt) + 2 * DAY);
    const ended = await ok(["buyer", "renew", "--provider", "1", "--address", buyer], keeperKey);
    expect(ended.out).to.contain("the subscription ended: the vault balance could not pay the next period (1 tUSD)");
    const after = await subs.subscriptionOf(buyer, 1);
    expect([after.active, after.paidPeriods]).to.deep.equal([false, 2n]);
    expect((await m.tollgate.accountOf(buyer)).balance).to.equal(USD(0.1));
    expect((await ok(["buyer", "subscription"], buyerKey)).out).to.contain("ended (paid until");
  });

  it("buyer unsubscribe cancels at the period's end; with nothing to cancel it says so and changes nothing", async () => {
    await refused(["buyer", "unsubscribe"], buyerKey, "has no subscription to cancel");
    await ok(["buyer", "deposit", "5"], buyerKey);
    await ok(["buyer", "subscribe", "2"], buyerKey);
    const cancelled = await ok(["buyer", "unsubscribe", "--provider", "1"], buyerKey);
    expect(cancelled.out).to.contain("cancelled; covered until");
    expect((await subs.subscriptionOf(buyer, 1)).cancelled).to.equal(true);
    await refused(["buyer", "unsubscribe", "--provider", "1"], buyerKey, "already cancelled");
    expect((await ok(["buyer", "subscription"], buyerKey)).out).to.contain("cancelled: covered until");
  });
});
