/**
 * Deploys Tollgate through Hardhat Ignition (and, unless PAYMENT_TOKEN is set, the 6-decimal test token) to
 * the selected network, and writes deployments/<network>.json, which the gateway, oracle and CLI read.
 *
 *   npx hardhat run scripts/deploy.ts                      # in-process Hardhat network
 *   npx hardhat run scripts/deploy.ts --network localhost  # a running `npx hardhat node`
 *   TOLLGATE_RPC_URL=https://… TOLLGATE_DEPLOYER_KEY=0x… PAYMENT_TOKEN=0x… \
 *     npx hardhat run scripts/deploy.ts --network rpc      # any EVM chain
 *
 * Parameters (environment, all optional): PAYMENT_TOKEN (default: deploy TestUSD), WITHDRAWAL_DELAY_SECONDS
 * (default 3 days), PRICE_NOTICE_SECONDS (default 1 day), PROTOCOL_FEE_BPS (default 250), TREASURY and OWNER
 * (default: the deployer); DEPLOYMENT_FILE (default deployments/<network>.json).
 * Ignition: IGNITION_DEPLOYMENT_ID (journal folder under ignition/deployments, default chain-<id>),
 * IGNITION_RESET=1 (forget that journal and deploy anew), IGNITION_CONFIRMATIONS (blocks to wait on a chain
 * that does not mine on demand; Ignition's default is 5).
 * On a network other than the in-process one, running this again with the same parameters returns the
 * existing deployment; an interrupted one resumes.
 */
import path from "node:path";
import hre from "hardhat";
import { deployParametersFromEnv, deployTollgate, DeployParameterError, TollgateDeployError } from "./lib/deploy-tollgate";

function confirmations(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw new DeployParameterError(`IGNITION_CONFIRMATIONS must be a whole number of blocks, at least 1, got "${raw}"`);
  }
  return Number(raw);
}

async function main() {
  if (hre.network.name === "rpc" && !process.env.TOLLGATE_RPC_URL) {
    throw new DeployParameterError("the rpc network needs TOLLGATE_RPC_URL (and TOLLGATE_DEPLOYER_KEY to sign)");
  }
  const parameters = deployParametersFromEnv(process.env);
  const file = process.env.DEPLOYMENT_FILE
    ? path.resolve(process.env.DEPLOYMENT_FILE)
    : path.join(__dirname, "..", "deployments", `${hre.network.name}.json`);
  await deployTollgate(hre, parameters, {
    deploymentFile: file,
    deploymentId: process.env.IGNITION_DEPLOYMENT_ID || undefined,
    reset: process.env.IGNITION_RESET === "1",
    requiredConfirmations: confirmations(process.env.IGNITION_CONFIRMATIONS),
    // On a real chain each transaction waits for confirmations; Ignition's live display shows it is not stuck.
    // Not when piped (CI, tests), where its cursor movements would garble the log.
    displayUi: hre.network.name !== "hardhat" && process.stdout.isTTY === true,
    log: (line) => console.log(line),
  });
}

main().catch((error) => {
  console.error(`deploy failed: ${error instanceof Error ? error.message : error}`);
  if (error instanceof TollgateDeployError && error.reason.startsWith("journal-")) {
    console.error("  (IGNITION_RESET=1 deploys anew under the same id; IGNITION_DEPLOYMENT_ID=<new id> keeps the old journal)");
  }
  // Our own errors already say what is wrong; anything else is most often the network or the account.
  if (!(error instanceof DeployParameterError || error instanceof TollgateDeployError)) {
    console.error("check the network settings in hardhat.config.ts and that the deployer account is funded");
  }
  process.exitCode = 1;
});
