/**
 * A gateway process that cannot start says why and exits non-zero, also when started from mocha with a fleet
 * section: a model the config names but the chain does not list used to end the process with code 0 and nothing on
 * stderr (the WAL checkpointer's unref'd worker was the only thing left, so the process ended while waiting for it).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import hre from "hardhat";
import { getAddress } from "viem";
import { generatePrivateKey } from "viem/accounts";
import { deployMarketplace } from "../../scripts/lib/marketplace-fixtures";
import { startGatewayProcess } from "../../scripts/lib/processes";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";
import { gatewayConfigObject } from "../helpers/gateway-harness";

describe("gateway process: a start failure exits non-zero with a message", function () {
  this.timeout(120_000);
  let rpc: RpcServer;
  let dir: string;

  after(async () => {
    await rpc?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a model the chain does not list: exit code 1 and a line naming the model and what to do", async function () {
    const market = await deployMarketplace();
    rpc = await startRpcServer(hre.network.provider);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-start-failure-"));
    fs.writeFileSync(path.join(dir, "deployment.json"), JSON.stringify({ chainId: Number(market.chainId), tollgate: getAddress(await market.tollgate.getAddress()) }));
    const config = gatewayConfigObject(dir, "http://127.0.0.1:9/v1", {
      listen: { host: "127.0.0.1", port: 0 },
      models: [{ name: "ghost-model", modelId: 77, upstream: "sim", maxOutputTokens: 512 }],
      // The reported case had a fleet section; its store is never reached before the chain check fails.
      fleet: { redisUrl: "redis://127.0.0.1:9", instanceId: "gw-ghost" },
    });
    const configPath = path.join(dir, "tollgate.config.json");
    fs.writeFileSync(configPath, JSON.stringify(config));

    const failure = await startGatewayProcess({ configPath, signerKey: generatePrivateKey(), rpcUrl: rpc.url }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(failure, "the gateway started although its model is not on-chain").to.be.instanceOf(Error);
    expect(failure!.message).to.contain("exited before listening (code 1, signal null)");
    expect(failure!.message).to.contain('tollgate gateway failed to start: model "ghost-model": cannot read on-chain model 77');
    expect(failure!.message).to.contain("list it first or fix modelId");
  });
});
