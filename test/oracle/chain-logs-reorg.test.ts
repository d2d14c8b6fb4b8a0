/**
 * The oracle's view of pending withdrawals (server/oracle/chain-logs.ts) across a real reorganisation on Anvil:
 * a cancellation the chain dropped must not keep a withdrawal the chain still has pending out of sight, or that
 * buyer's usage would not be settled early and the money could leave before the provider is paid.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { createWalletClient, http, parseUnits } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { cancelWithdrawal, createTollgateClient, depositWithPermit, mintTestTokens, requestWithdrawal, type TollgateClient } from "../../client";
import { deployByRpc } from "../../scripts/lib/deploy-process";
import type { TollgateDeployment } from "../../scripts/lib/deploy-tollgate";
import { WithdrawalWatch } from "../../server/oracle/chain-logs";
import { startAnvil, type Anvil } from "../helpers/anvil";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const YEAR = 365 * 24 * 3600;

describe("oracle chain logs across a reorganisation (Anvil)", function () {
  this.timeout(120_000);

  let anvil: Anvil;
  let dir: string;
  let deployment: TollgateDeployment;
  let buyer: TollgateClient;
  const deploymentId = `test-chain-logs-${process.pid}-${Date.now()}`;

  before(async function () {
    anvil = await startAnvil();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-chain-logs-"));
    ({ deployment } = await deployByRpc({ rpcUrl: anvil.url, deployerKey: anvil.keys[0], deploymentFile: path.join(dir, "deployment.json"), deploymentId, confirmations: 1 }));
    const account = privateKeyToAccount(anvil.keys[5]);
    const walletClient = createWalletClient({ account, transport: http(anvil.url), pollingInterval: 50 });
    buyer = await createTollgateClient({ publicClient: anvil.client, walletClient, deployment, pollingInterval: 50 });
    await mintTestTokens(buyer, { amount: parseUnits("10", 6) });
    await depositWithPermit(buyer, { amount: parseUnits("10", 6) });
  });

  after(async function () {
    await anvil?.stop();
    fs.rmSync(path.join(REPO_ROOT, "ignition", "deployments", deploymentId), { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a withdrawal whose cancellation a reorganisation dropped is pending again in the oracle's view", async function () {
    const watch = new WithdrawalWatch(anvil.client, deployment.tollgate, BigInt(deployment.deployBlock), 5_000);
    const address = buyer.wallet!.account.address;
    const now = async () => Number((await anvil.client.getBlock({ blockTag: "latest" })).timestamp);

    await requestWithdrawal(buyer, { amount: parseUnits("4", 6) });
    await watch.refresh();
    expect(watch.urgent([address], await now(), YEAR), "requested: pending").to.deep.equal([address]);

    await cancelWithdrawal(buyer);
    await watch.refresh();
    expect(watch.urgent([address], await now(), YEAR), "cancelled: nothing pending").to.deep.equal([]);

    // The block with the cancellation is replaced by an empty one: on the chain the withdrawal is pending again.
    await anvil.dev.request({ method: "anvil_reorg", params: [1, []] });
    await watch.refresh();
    expect(watch.urgent([address], await now(), YEAR), "the cancellation is gone: pending again").to.deep.equal([address]);
  });
});
