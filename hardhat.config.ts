import path from "node:path";
import { subtask } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import type { HardhatUserConfig } from "hardhat/config";
import "@nomicfoundation/hardhat-toolbox";

// The compiler comes from the npm `solc` package, so compiling never downloads anything.
// The config's version must equal the installed package's, or the build would be mislabelled.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const SOLC_VERSION: string = require("solc/package.json").version;

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args: { solcVersion: string }, _hre, runSuper) => {
  if (args.solcVersion !== SOLC_VERSION) return runSuper(args);
  const compilerPath = path.join(path.dirname(require.resolve("solc/package.json")), "soljson.js");
  return { compilerPath, isSolcJs: true, version: SOLC_VERSION, longVersion: SOLC_VERSION };
});

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      // Cancun: transient storage for the reentrancy guard, supported by every major L2.
      evmVersion: "cancun",
      viaIR: true,
      optimizer: { enabled: true, runs: 200 },
      // Added to Hardhat's default outputs: test/contracts/storage-layout.test.ts checks the storage layout
      // the compiler reports against a snapshot and against the bit layout the assembly assumes.
      outputSelection: { "*": { "*": ["storageLayout"] } },
    },
  },
  networks: {
    // A local `npx hardhat node` (or Anvil). Its accounts are the node's own unlocked ones.
    localhost: { url: "http://127.0.0.1:8545" },
    // Any EVM chain: TOLLGATE_RPC_URL, signing with TOLLGATE_DEPLOYER_KEY when set (else the node's accounts).
    // Keys come only from the environment. Without a URL the network points at an address that cannot
    // resolve, so nothing is sent anywhere by mistake (scripts/deploy.ts says what is missing).
    rpc: {
      url: process.env.TOLLGATE_RPC_URL || "http://tollgate-rpc-url-not-set.invalid",
      accounts: process.env.TOLLGATE_DEPLOYER_KEY ? [process.env.TOLLGATE_DEPLOYER_KEY] : "remote",
    },
  },
  mocha: { timeout: 120_000 },
  gasReporter: { enabled: process.env.REPORT_GAS === "1" },
};

export default config;
