/**
 * Fails if a deployable contract's runtime code passes the EIP-170 limit (24,576 bytes), so a change that
 * would make Tollgate undeployable on mainnet and most L2s is caught before the tests run.
 * Run by `npm test` (pretest) on the production build; coverage builds are instrumented and larger.
 */
import { artifacts } from "hardhat";

const EIP170_LIMIT = 24_576;
const DEPLOYABLE = ["Tollgate", "TollgateCredits", "TollgateSubscriptions", "DisputeEvidence"];

async function main() {
  for (const name of DEPLOYABLE) {
    const { deployedBytecode } = await artifacts.readArtifact(name);
    const size = (deployedBytecode.length - 2) / 2;
    const verdict = size <= EIP170_LIMIT ? "ok" : "TOO LARGE";
    console.log(`${name}: ${size} bytes of ${EIP170_LIMIT} (${verdict})`);
    if (size > EIP170_LIMIT) {
      process.exitCode = 1;
      console.error(`${name} cannot be deployed: move code out of it or lower the optimizer's runs in hardhat.config.ts`);
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
