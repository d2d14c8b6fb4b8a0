/**
 * Deploys Tollgate (and, unless PAYMENT_TOKEN is set, the 6-decimal test token) to the selected network,
 * and writes the addresses to deployments/<network>.json, which the gateway, oracle and CLI read.
 *
 *   npx hardhat run scripts/deploy.ts                      # in-process Hardhat network
 *   npx hardhat run scripts/deploy.ts --network localhost  # a running `npx hardhat node`
 *
 * Parameters (environment, all optional): PAYMENT_TOKEN, WITHDRAWAL_DELAY_SECONDS (default 3 days),
 * PRICE_NOTICE_SECONDS (default 1 day), PROTOCOL_FEE_BPS (default 250), TREASURY (default: deployer).
 */
import fs from "node:fs";
import path from "node:path";
import hre, { ethers } from "hardhat";

function parameter(name: string, fallback: bigint): bigint {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a whole number, got "${raw}"`);
  return BigInt(raw);
}

async function main() {
  const [deployer] = await ethers.getSigners();
  const withdrawalDelay = parameter("WITHDRAWAL_DELAY_SECONDS", 3n * 24n * 3600n);
  const priceNotice = parameter("PRICE_NOTICE_SECONDS", 24n * 3600n);
  const feeBps = parameter("PROTOCOL_FEE_BPS", 250n);
  const treasury = process.env.TREASURY || deployer.address;
  const { chainId } = await ethers.provider.getNetwork();

  console.log(`deploying to ${hre.network.name} (chain ${chainId}) from ${deployer.address}`);
  let paymentToken = process.env.PAYMENT_TOKEN;
  if (!paymentToken) {
    const token = await ethers.deployContract("TestUSD");
    await token.waitForDeployment();
    paymentToken = await token.getAddress();
    console.log(`  TestUSD (6 decimals, permit)  ${paymentToken}`);
  }
  const tollgate = await ethers.deployContract("Tollgate", [
    paymentToken,
    withdrawalDelay,
    priceNotice,
    feeBps,
    treasury,
    deployer.address,
  ]);
  const receipt = await (await tollgate.waitForDeployment()).deploymentTransaction()!.wait();
  const address = await tollgate.getAddress();
  console.log(`  Tollgate                       ${address}  (gas ${receipt!.gasUsed})`);
  console.log(
    `  withdrawal delay ${withdrawalDelay}s, price notice ${priceNotice}s, fee ${feeBps} bps, treasury ${treasury}`,
  );

  const deployment = {
    network: hre.network.name,
    chainId: Number(chainId),
    tollgate: address,
    paymentToken,
    deployBlock: receipt!.blockNumber,
    parameters: {
      withdrawalDelaySeconds: Number(withdrawalDelay),
      priceNoticeSeconds: Number(priceNotice),
      protocolFeeBps: Number(feeBps),
      treasury,
    },
  };
  const file = path.join(__dirname, "..", "deployments", `${hre.network.name}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(deployment, null, 2) + "\n");
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((error) => {
  console.error(`deploy failed: ${error instanceof Error ? error.message : error}`);
  console.error("check the network settings in hardhat.config.ts and that the deployer account is funded");
  process.exitCode = 1;
});
