/**
 * Ignition deployment to a chain given only by RPC URL and key: `scripts/deploy.ts --network rpc` as its own
 * process (TOLLGATE_RPC_URL + TOLLGATE_DEPLOYER_KEY), against Anvil, a node of another make than Hardhat's. The
 * result is checked from the chain (code, owner = the key's address rather than the node's first account,
 * parameters), then used as an operator would: the CLI reads and writes through the deployment file it wrote,
 * and a gateway process starts on it and sells the model the CLI listed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { getAddress, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { runCli } from "../../scripts/cli";
import { deployByRpc, DeployScriptError, runDeployScript } from "../../scripts/lib/deploy-process";
import { killAllProcesses, startGatewayProcess } from "../../scripts/lib/processes";
import { testUsdAbi, tollgateAbi, tollgateCreditsAbi } from "../../server/chain/abis";
import { startSimulatedUpstream, type SimulatedUpstream } from "../../server/upstream/simulated-upstream";
import { startAnvil, type Anvil } from "../helpers/anvil";

const REPO_ROOT = path.resolve(__dirname, "..", "..");

async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(args, { env, stdout: { write: (text: string) => (out += text) }, stderr: { write: (text: string) => (err += text) } });
  return { code, out, err };
}

describe("Ignition deployment to Anvil, given only an RPC URL and a key (scripts/deploy.ts --network rpc)", function () {
  this.timeout(180_000);

  let anvil: Anvil;
  let upstream: SimulatedUpstream;
  let dir: string;
  let file: string;
  const deploymentId = `test-anvil-${process.pid}-${Date.now()}`;

  before(async function () {
    anvil = await startAnvil();
    upstream = await startSimulatedUpstream();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-anvil-deploy-"));
    file = path.join(dir, "anvil.json");
  });

  after(async function () {
    await killAllProcesses();
    await upstream?.close();
    await anvil?.stop();
    fs.rmSync(path.join(REPO_ROOT, "ignition", "deployments", deploymentId), { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("deploys with the key's account as owner and treasury and the parameters asked, readable from the chain; the CLI and a gateway run on the file it wrote", async function () {
    // Not the node's first (default) account: the key alone decides who deploys and owns.
    const deployerKey = anvil.keys[3];
    const deployer = privateKeyToAccount(deployerKey).address;
    const nonceBefore = await anvil.client.getTransactionCount({ address: deployer });
    const { deployment, output } = await deployByRpc({
      rpcUrl: anvil.url,
      deployerKey,
      deploymentFile: file,
      deploymentId,
      confirmations: 1,
      parameters: { protocolFeeBps: 300n, withdrawalDelaySeconds: 7_200n, priceNoticeSeconds: 600n },
    });
    expect(output).to.contain(deployment.tollgate);

    // The deployment file, as the script wrote it.
    expect(deployment.network).to.equal("rpc");
    expect(deployment.chainId).to.equal(anvil.chainId);
    expect(deployment.parameters).to.deep.equal({ withdrawalDelaySeconds: 7_200, priceNoticeSeconds: 600, protocolFeeBps: 300, treasury: deployer, testToken: true });

    // The chain, independently: code where the file says, created from the key's account in the block it says.
    for (const address of [deployment.tollgate, deployment.paymentToken, deployment.credits]) {
      expect(await anvil.client.getCode({ address }), `code at ${address}`).to.not.equal(undefined);
    }
    expect(await anvil.client.getCode({ address: deployment.tollgate, blockNumber: BigInt(deployment.deployBlock - 1) }), "no Tollgate before its deploy block").to.equal(undefined);
    expect(await anvil.client.getTransactionCount({ address: deployer }), "two creations from the key: test token, Tollgate").to.equal(nonceBefore + 2);
    const read = <T>(functionName: string) => anvil.client.readContract({ address: deployment.tollgate, abi: tollgateAbi, functionName } as never) as Promise<T>;
    expect(getAddress(await read<Address>("owner"))).to.equal(deployer);
    expect(getAddress(await read<Address>("treasury"))).to.equal(deployer);
    expect(await read<bigint>("protocolFeeBps")).to.equal(300n);
    expect(await read<bigint>("withdrawalDelay")).to.equal(7_200n);
    expect(await read<bigint>("priceNoticePeriod")).to.equal(600n);
    expect(getAddress(await read<Address>("paymentToken"))).to.equal(deployment.paymentToken);
    expect(getAddress(await read<Address>("credits"))).to.equal(deployment.credits);
    expect(getAddress(await anvil.client.readContract({ address: deployment.credits, abi: tollgateCreditsAbi, functionName: "tollgate" }))).to.equal(deployment.tollgate);
    expect(await anvil.client.readContract({ address: deployment.paymentToken, abi: testUsdAbi, functionName: "decimals" })).to.equal(6);

    // The CLI on that file: reads the deployment, and a provider sets up shop with its own key.
    const on = ["--rpc", anvil.url, "--deployment", file];
    const status = await cli([...on, "operator", "status", "--json"]);
    expect(status.code, status.err).to.equal(0);
    const shown = JSON.parse(status.out) as { chainId: number; tollgate: string; owner: string; protocolFeeBps: string };
    expect(shown).to.include({ chainId: anvil.chainId, protocolFeeBps: "300" });
    expect(getAddress(shown.tollgate)).to.equal(deployment.tollgate);
    expect(getAddress(shown.owner)).to.equal(deployer);
    const providerKey = anvil.keys[4];
    const provider = privateKeyToAccount(providerKey).address;
    const gatewayKey = generatePrivateKey();
    const gatewaySigner = privateKeyToAccount(gatewayKey).address;
    for (const args of [
      ["provider", "register", provider, "ipfs://anvil-provider"],
      ["provider", "list-model", "1", "small-model", "--input", "0.15", "--output", "0.6"],
      ["provider", "authorize-signer", "1", gatewaySigner],
    ]) {
      const result = await cli([...on, ...args], { TOLLGATE_PRIVATE_KEY: providerKey });
      expect(result.code, `${args.join(" ")}: ${result.err}`).to.equal(0);
    }
    const signer = await anvil.client.readContract({ address: deployment.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [gatewaySigner] });
    expect(signer).to.include({ providerId: 1, authorized: true, nextSequence: 0n });

    // A gateway process on the same file and URL: it starts, its key is authorized, and it sells the model.
    const configPath = path.join(dir, "tollgate.config.json");
    fs.writeFileSync(
      configPath,
      JSON.stringify({
        listen: { host: "127.0.0.1", port: 0 },
        chain: { rpcUrl: anvil.url, deploymentFile: path.basename(file) },
        providerId: 1,
        store: { path: "usage.sqlite" },
        upstreams: { simulated: { baseUrl: upstream.url } },
        models: [{ name: "small-model", modelId: 1, upstream: "simulated", upstreamModel: "sim-chat-mini", maxOutputTokens: 256 }],
        log: { level: "warn" },
      }),
    );
    const gateway = await startGatewayProcess({ configPath, signerKey: gatewayKey, rpcUrl: anvil.url });
    expect(getAddress(gateway.signer)).to.equal(gatewaySigner);
    const models = (await (await fetch(`${gateway.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((model) => model.id)).to.include("small-model");
    await gateway.stop();
  });

  it("fails with the script's own message, and deploys nothing, when the key is not a key", async function () {
    const blockBefore = await anvil.client.getBlockNumber({ cacheTime: 0 });
    const result = await runDeployScript({ rpcUrl: anvil.url, deployerKey: "0x1234", deploymentFile: path.join(dir, "bad.json"), deploymentId: `${deploymentId}-bad` });
    expect(result.code).to.not.equal(0);
    expect(result.output).to.contain("private key too short, expected 32 bytes");
    expect(fs.existsSync(path.join(dir, "bad.json"))).to.equal(false);
    expect(await anvil.client.getBlockNumber({ cacheTime: 0 })).to.equal(blockBefore);
    const thrown = await deployByRpc({ rpcUrl: anvil.url, deployerKey: "0x1234", deploymentFile: path.join(dir, "bad.json") }).catch((error: unknown) => error);
    expect(thrown).to.be.instanceOf(DeployScriptError);
    expect((thrown as Error).message).to.contain(`TOLLGATE_RPC_URL=${anvil.url}`);
  });
});
