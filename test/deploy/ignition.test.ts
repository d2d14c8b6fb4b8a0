/**
 * The Ignition deployment (ignition/modules/Tollgate.ts through scripts/lib/deploy-tollgate.ts): defaults and
 * custom parameters as the contract reports them, contract errors surfacing by name, the deployment file,
 * and — through `scripts/deploy.ts` run as its own process against a chain served over JSON-RPC — Ignition's
 * journal: idempotent re-runs, conflicting parameters, resets, and a restarted node.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import hre, { ethers } from "hardhat";
import { createProvider } from "hardhat/internal/core/providers/construction";
import type { EthereumProvider } from "hardhat/types";
import { getAddress, zeroAddress, type Address } from "viem";
import {
  deployTollgate,
  deployParametersFromEnv,
  parseDeployParameters,
  DeployParameterError,
  TollgateDeployError,
  type TollgateDeployment,
} from "../../scripts/lib/deploy-tollgate";
import { readDeploymentFile } from "../../server/chain/deployment";
import { startRpcServer, type RpcServer } from "../../scripts/lib/rpc-server";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const DAY = 24n * 3600n;

/** Reading a Tollgate deployment back from the chain, independently of what deployTollgate reported. */
async function onChain(deployment: Pick<TollgateDeployment, "tollgate">) {
  const tollgate = await ethers.getContractAt("Tollgate", deployment.tollgate);
  return {
    paymentToken: await tollgate.paymentToken(),
    withdrawalDelay: await tollgate.withdrawalDelay(),
    priceNotice: await tollgate.priceNoticePeriod(),
    feeBps: await tollgate.protocolFeeBps(),
    treasury: await tollgate.treasury(),
    owner: await tollgate.owner(),
    credits: await tollgate.credits(),
  };
}

async function expectRejected(promise: Promise<unknown>, pattern: RegExp): Promise<TollgateDeployError> {
  const error = await promise.then(
    () => expect.fail("the deployment succeeded"),
    (caught: unknown) => caught,
  );
  expect(error).to.be.instanceOf(TollgateDeployError);
  expect((error as Error).message).to.match(pattern);
  return error as TollgateDeployError;
}

describe("Ignition deployment", function () {
  describe("deployTollgate on the in-process network", function () {
    it("deploys the test token and Tollgate with the default parameters, deployer as treasury and owner", async function () {
      const [deployer] = await ethers.getSigners();
      const nonceBefore = await ethers.provider.getTransactionCount(deployer.address);

      const deployment = await deployTollgate(hre);

      const chain = await onChain(deployment);
      expect(chain.withdrawalDelay).to.equal(3n * DAY);
      expect(chain.priceNotice).to.equal(DAY);
      expect(chain.feeBps).to.equal(250n);
      expect(chain.treasury).to.equal(deployer.address);
      expect(chain.owner).to.equal(deployer.address);
      expect(chain.paymentToken).to.equal(deployment.paymentToken);
      expect(chain.credits).to.equal(deployment.credits);
      // The test token is TestUSD, deployed in this run: two creations from the deployer, token then Tollgate.
      const token = await ethers.getContractAt("TestUSD", deployment.paymentToken);
      expect(await token.decimals()).to.equal(6n);
      expect(await token.symbol()).to.equal("tUSD");
      expect(await ethers.provider.getTransactionCount(deployer.address)).to.equal(nonceBefore + 2);
      const credits = await ethers.getContractAt("TollgateCredits", deployment.credits);
      expect(await credits.tollgate()).to.equal(deployment.tollgate);

      expect(deployment.network).to.equal("hardhat");
      expect(deployment.chainId).to.equal(31337);
      expect(deployment.parameters).to.deep.equal({
        withdrawalDelaySeconds: 259_200,
        priceNoticeSeconds: 86_400,
        protocolFeeBps: 250,
        treasury: deployer.address,
        testToken: true,
      });
    });

    it("settles in an existing token with a custom fee, treasury, owner, withdrawal delay and price notice", async function () {
      const [deployer, , , , , treasury, owner] = await ethers.getSigners();
      const existing = await ethers.deployContract("TestUSD");
      const existingAddress = (await existing.getAddress()) as Address;
      const nonceBefore = await ethers.provider.getTransactionCount(deployer.address);

      const deployment = await deployTollgate(hre, {
        paymentToken: existingAddress,
        protocolFeeBps: 100n,
        treasury: treasury.address as Address,
        owner: owner.address as Address,
        withdrawalDelaySeconds: 7_200n,
        priceNoticeSeconds: 600n,
      });

      const chain = await onChain(deployment);
      expect(chain.paymentToken).to.equal(existingAddress);
      expect(chain.feeBps).to.equal(100n);
      expect(chain.treasury).to.equal(treasury.address);
      expect(chain.owner).to.equal(owner.address);
      expect(chain.withdrawalDelay).to.equal(7_200n);
      expect(chain.priceNotice).to.equal(600n);
      // Only Tollgate was created: no test token beside the existing one.
      expect(await ethers.provider.getTransactionCount(deployer.address)).to.equal(nonceBefore + 1);
      expect(deployment.paymentToken).to.equal(existingAddress);
      expect(deployment.parameters).to.deep.equal({
        withdrawalDelaySeconds: 7_200,
        priceNoticeSeconds: 600,
        protocolFeeBps: 100,
        treasury: treasury.address,
        testToken: false,
      });
    });

    it("deploys from another of the network's accounts, which then defaults to treasury and owner", async function () {
      const signers = await ethers.getSigners();
      const deployer = signers[4];
      const nonceBefore = await ethers.provider.getTransactionCount(deployer.address);

      const deployment = await deployTollgate(hre, {}, { deployer: deployer.address as Address });

      const chain = await onChain(deployment);
      expect(chain.treasury).to.equal(deployer.address);
      expect(chain.owner).to.equal(deployer.address);
      expect(await ethers.provider.getTransactionCount(deployer.address)).to.equal(nonceBefore + 2);
    });

    it("treats the zero address as no payment token and deploys the test token", async function () {
      const deployment = await deployTollgate(hre, { paymentToken: zeroAddress });

      expect(deployment.parameters.testToken).to.equal(true);
      expect(deployment.paymentToken).to.not.equal(zeroAddress);
      const token = await ethers.getContractAt("TestUSD", deployment.paymentToken);
      expect(await token.symbol()).to.equal("tUSD");
    });

    it("deploys a new, independent system on every call (no journal on the in-process network)", async function () {
      const first = await deployTollgate(hre);
      const second = await deployTollgate(hre);

      expect(second.tollgate).to.not.equal(first.tollgate);
      expect(second.paymentToken).to.not.equal(first.paymentToken);
      expect(second.credits).to.not.equal(first.credits);
      expect(second.deployBlock).to.be.greaterThan(first.deployBlock);
      expect((await onChain(second)).paymentToken).to.equal(second.paymentToken);
    });

    it("fails with VaultFeeTooHigh(fee, max) above MAX_FEE_BPS, sending nothing", async function () {
      const [deployer] = await ethers.getSigners();
      const reference = await deployTollgate(hre);
      const max = await (await ethers.getContractAt("Tollgate", reference.tollgate)).MAX_FEE_BPS();
      const blockBefore = await ethers.provider.getBlockNumber();
      const nonceBefore = await ethers.provider.getTransactionCount(deployer.address);

      const error = await expectRejected(
        deployTollgate(hre, { paymentToken: reference.paymentToken, protocolFeeBps: max + 1n }),
        new RegExp(`VaultFeeTooHigh\\(${max + 1n}, ${max}\\)`),
      );

      expect(error.reason).to.equal("rejected");
      expect(await ethers.provider.getBlockNumber()).to.equal(blockBefore);
      expect(await ethers.provider.getTransactionCount(deployer.address)).to.equal(nonceBefore);
    });

    it("accepts a fee of exactly MAX_FEE_BPS", async function () {
      const reference = await deployTollgate(hre);
      const max = await (await ethers.getContractAt("Tollgate", reference.tollgate)).MAX_FEE_BPS();

      const deployment = await deployTollgate(hre, { paymentToken: reference.paymentToken, protocolFeeBps: max });

      expect((await onChain(deployment)).feeBps).to.equal(max);
    });

    it("fails with VaultZeroAddress for a zero treasury", async function () {
      const reference = await deployTollgate(hre);
      await expectRejected(
        deployTollgate(hre, { paymentToken: reference.paymentToken, treasury: zeroAddress }),
        /VaultZeroAddress\(\)/,
      );
    });

    it("refuses a deployer that is not one of the network's accounts", async function () {
      const error = await expectRejected(
        deployTollgate(hre, {}, { deployer: "0x000000000000000000000000000000000000dEaD" }),
        /0x000000000000000000000000000000000000dEaD is not one of network hardhat's accounts/,
      );
      expect(error.reason).to.equal("account");
    });

    it("refuses a seconds value the deployment file cannot hold as a JSON number", async function () {
      const error = await deployTollgate(hre, { withdrawalDelaySeconds: BigInt(Number.MAX_SAFE_INTEGER) + 1n }).catch((e) => e);
      expect(error).to.be.instanceOf(DeployParameterError);
      expect(error.message).to.contain("withdrawalDelaySeconds must be a whole number from 0 to 9007199254740991");
    });

    it("writes a deployment file that reads back to the same deployment", async function () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-deploy-"));
      const file = path.join(dir, "nested", "hardhat.json");
      try {
        const deployment = await deployTollgate(hre, { protocolFeeBps: 42n }, { deploymentFile: file });

        const read = readDeploymentFile(file);
        expect(read).to.deep.equal(deployment);
        expect(read.parameters?.protocolFeeBps).to.equal(42);
        expect(JSON.parse(fs.readFileSync(file, "utf8")).tollgate).to.equal(deployment.tollgate);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("records the block of the Tollgate creation transaction as deployBlock", async function () {
      // Blocks mined before the deployment must not be mistaken for it.
      await hre.network.provider.send("hardhat_mine", ["0x3"]);
      const deployment = await deployTollgate(hre);

      expect(await ethers.provider.getCode(deployment.tollgate, deployment.deployBlock - 1)).to.equal("0x");
      expect(await ethers.provider.getCode(deployment.tollgate, deployment.deployBlock)).to.not.equal("0x");
      // The test token came a block earlier: deployBlock is Tollgate's, not the first of the run.
      expect(await ethers.provider.getCode(deployment.paymentToken, deployment.deployBlock - 1)).to.not.equal("0x");
    });
  });

  describe("parseDeployParameters", function () {
    it("reports every malformed parameter at once, under the name it was given", function () {
      let message = "";
      try {
        deployParametersFromEnv({
          PAYMENT_TOKEN: "0x1234",
          WITHDRAWAL_DELAY_SECONDS: "3d",
          PRICE_NOTICE_SECONDS: "-1",
          PROTOCOL_FEE_BPS: "2.5",
          // A valid address with one letter's case flipped: the checksum catches the typo.
          TREASURY: "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
          OWNER: "9007199254740992",
        });
        expect.fail("parsed");
      } catch (error) {
        expect(error).to.be.instanceOf(DeployParameterError);
        message = (error as Error).message;
      }
      for (const name of ["PAYMENT_TOKEN", "WITHDRAWAL_DELAY_SECONDS", "PRICE_NOTICE_SECONDS", "PROTOCOL_FEE_BPS", "TREASURY", "OWNER"]) {
        expect(message).to.contain(`${name} must be`);
      }
    });

    it("rejects a number of seconds beyond what the deployment file can hold", function () {
      expect(() => parseDeployParameters({ priceNoticeSeconds: "9007199254740992" })).to.throw(
        DeployParameterError,
        /priceNoticeSeconds must be a whole number from 0 to 9007199254740991/,
      );
      expect(parseDeployParameters({ priceNoticeSeconds: "9007199254740991" }).priceNoticeSeconds).to.equal(9007199254740991n);
    });

    it("leaves empty values to the defaults and checksums lower-case addresses", function () {
      const parsed = deployParametersFromEnv({
        PAYMENT_TOKEN: "",
        PROTOCOL_FEE_BPS: " 100 ",
        TREASURY: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        UNRELATED: "x",
      });
      expect(parsed).to.deep.equal({
        protocolFeeBps: 100n,
        treasury: getAddress("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
      });
    });
  });

  describe("scripts/deploy.ts on a chain reached by RPC URL (the `rpc` network)", function () {
    this.timeout(240_000);

    // A second in-process chain, independent of the one the other tests use, served over HTTP as a node would be.
    let node: { provider: EthereumProvider; server: RpcServer } | undefined;
    let port = 0;
    const deploymentId = `test-${process.pid}-${Date.now()}`;
    const journal = path.join(REPO_ROOT, "ignition", "deployments", deploymentId);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-deploy-rpc-"));
    const file = path.join(dir, "rpc.json");

    async function startNode(chainId: number) {
      const config = {
        ...hre.config,
        networks: { ...hre.config.networks, hardhat: { ...hre.config.networks.hardhat, chainId } },
      };
      const provider = await createProvider(config, "hardhat", hre.artifacts);
      // The same port across a "restart", as a local node keeps its URL.
      const server = await startRpcServer(provider, { port });
      port = server.port;
      node = { provider, server };
    }

    async function stopNode() {
      await node?.server.close();
      node = undefined;
    }

    function deployScript(env: Record<string, string>): Promise<{ code: number; output: string }> {
      const childEnv: NodeJS.ProcessEnv = { ...process.env };
      for (const name of ["PAYMENT_TOKEN", "WITHDRAWAL_DELAY_SECONDS", "PRICE_NOTICE_SECONDS", "PROTOCOL_FEE_BPS", "TREASURY", "OWNER",
        "IGNITION_RESET", "IGNITION_CONFIRMATIONS", "TOLLGATE_DEPLOYER_KEY", "HARDHAT_NETWORK"]) {
        delete childEnv[name];
      }
      Object.assign(childEnv, {
        TOLLGATE_RPC_URL: node?.server.url ?? "",
        IGNITION_DEPLOYMENT_ID: deploymentId,
        DEPLOYMENT_FILE: file,
        ...env,
      });
      const cli = require.resolve("hardhat/internal/cli/bootstrap", { paths: [REPO_ROOT] });
      return new Promise((resolve) => {
        execFile(
          process.execPath,
          [cli, "run", "--no-compile", "--network", "rpc", "scripts/deploy.ts"],
          { cwd: REPO_ROOT, env: childEnv, timeout: 120_000 },
          (error, stdout, stderr) => {
            const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
            resolve({ code, output: stdout + stderr });
          },
        );
      });
    }

    async function codeAt(address: string): Promise<string> {
      return (await node!.provider.request({ method: "eth_getCode", params: [address, "latest"] })) as string;
    }

    afterEach(async function () {
      await stopNode();
      fs.rmSync(journal, { recursive: true, force: true });
      fs.rmSync(file, { force: true });
    });

    after(function () {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("writes the deployment file with the real deploy block, and deploying again returns the same contracts", async function () {
      await startNode(31337);

      const first = await deployScript({ PROTOCOL_FEE_BPS: "300" });
      expect(first.code, first.output).to.equal(0);
      const deployment = readDeploymentFile(file);
      expect(deployment.network).to.equal("rpc");
      expect(deployment.parameters?.protocolFeeBps).to.equal(300);
      expect(await codeAt(deployment.tollgate)).to.not.equal("0x");
      const before = (await node!.provider.request({ method: "eth_getCode", params: [deployment.tollgate, `0x${(deployment.deployBlock! - 1).toString(16)}`] })) as string;
      expect(before).to.equal("0x");
      expect(fs.existsSync(path.join(journal, "journal.jsonl"))).to.equal(true);

      const blockBefore = (await node!.provider.request({ method: "eth_blockNumber" })) as string;
      const second = await deployScript({ PROTOCOL_FEE_BPS: "300" });
      expect(second.code, second.output).to.equal(0);
      expect(second.output).to.contain("was already deployed by an earlier run");
      expect(readDeploymentFile(file)).to.deep.equal(deployment);
      expect(await node!.provider.request({ method: "eth_blockNumber" })).to.equal(blockBefore);
    });

    it("refuses other parameters under the same journal, and deploys anew with IGNITION_RESET=1", async function () {
      await startNode(31337);
      const first = await deployScript({});
      expect(first.code, first.output).to.equal(0);
      const original = readDeploymentFile(file);

      const conflicting = await deployScript({ PROTOCOL_FEE_BPS: "300" });
      expect(conflicting.code).to.equal(1);
      expect(conflicting.output).to.contain("reconciliation errors");
      expect(conflicting.output).to.contain("IGNITION_RESET=1");
      expect(readDeploymentFile(file)).to.deep.equal(original);

      const reset = await deployScript({ PROTOCOL_FEE_BPS: "300", IGNITION_RESET: "1" });
      expect(reset.code, reset.output).to.equal(0);
      const renewed = readDeploymentFile(file);
      expect(renewed.tollgate).to.not.equal(original.tollgate);
      expect(renewed.parameters?.protocolFeeBps).to.equal(300);
    });

    it("replaces the journal of a development node that was restarted", async function () {
      await startNode(31337);
      const first = await deployScript({});
      expect(first.code, first.output).to.equal(0);
      const original = readDeploymentFile(file);
      await stopNode();
      await startNode(31337);
      expect(await codeAt(original.tollgate)).to.equal("0x");

      const again = await deployScript({});

      expect(again.code, again.output).to.equal(0);
      expect(again.output).to.contain("records contracts this chain does not have");
      expect(await codeAt(readDeploymentFile(file).tollgate)).to.not.equal("0x");
    });

    it("refuses to act alone on a journal whose contracts a non-development chain lacks", async function () {
      await startNode(4242);
      const first = await deployScript({});
      expect(first.code, first.output).to.equal(0);
      expect(readDeploymentFile(file).chainId).to.equal(4242);
      await stopNode();
      await startNode(4242);

      const again = await deployScript({});

      expect(again.code).to.equal(1);
      expect(again.output).to.contain("records contracts with no code on chain 4242");
      expect(fs.existsSync(path.join(journal, "journal.jsonl"))).to.equal(true);
    });

    it("says what is missing when the rpc network has no URL", async function () {
      const result = await deployScript({ TOLLGATE_RPC_URL: "" });
      expect(result.code).to.equal(1);
      expect(result.output).to.contain("the rpc network needs TOLLGATE_RPC_URL");
    });
  });
});
