/**
 * `scripts/deploy.ts` run as its own process on the `rpc` network (hardhat.config.ts): Tollgate deployed with
 * Ignition to a chain known only by its JSON-RPC URL and a deployer key, exactly as an operator deploys to any
 * EVM chain. The demo uses it for an external chain; the tests use it to check that path against Anvil.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import type { Hex } from "viem";
import { readDeploymentFile } from "../../server/chain/deployment";
import { DEPLOY_PARAMETER_ENV, type TollgateDeployment, type TollgateDeployParameters } from "./deploy-tollgate";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
const DEFAULT_TIMEOUT_MS = 180_000;

export interface DeployScriptOptions {
  rpcUrl: string;
  /** Signs every deployment transaction; its account becomes owner and treasury unless the parameters say otherwise. */
  deployerKey: Hex;
  /** Where the script writes the deployment file. */
  deploymentFile: string;
  parameters?: TollgateDeployParameters;
  /** Ignition's journal folder under ignition/deployments (default: the script's `chain-<id>`). */
  deploymentId?: string;
  /** Forget that journal first and deploy anew. */
  reset?: boolean;
  /** Blocks Ignition waits for per transaction (a chain that mines on demand needs 1). */
  confirmations?: number;
  /** Extra environment (tests: a missing URL). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface DeployScriptResult {
  code: number;
  /** stdout and stderr together: Ignition's progress, or what went wrong. */
  output: string;
}

/** The deploy script failed; its output says why. */
export class DeployScriptError extends Error {
  override name = "DeployScriptError";
  constructor(
    readonly result: DeployScriptResult,
    rpcUrl: string,
  ) {
    super(`scripts/deploy.ts --network rpc (TOLLGATE_RPC_URL=${rpcUrl}) exited with code ${result.code}:\n${result.output.trim()}`);
  }
}

/** Runs the script and resolves with its exit code and output, whatever they are. */
export function runDeployScript(options: DeployScriptOptions): Promise<DeployScriptResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Nothing of this process's own setup may leak into the deployment: only what the options say.
  for (const name of [...Object.values(DEPLOY_PARAMETER_ENV), "IGNITION_RESET", "IGNITION_CONFIRMATIONS", "IGNITION_DEPLOYMENT_ID", "HARDHAT_NETWORK"]) delete env[name];
  for (const [key, name] of Object.entries(DEPLOY_PARAMETER_ENV)) {
    const value = options.parameters?.[key as keyof TollgateDeployParameters];
    if (value !== undefined) env[name] = value.toString();
  }
  Object.assign(env, {
    TOLLGATE_RPC_URL: options.rpcUrl,
    TOLLGATE_DEPLOYER_KEY: options.deployerKey,
    DEPLOYMENT_FILE: options.deploymentFile,
    ...(options.deploymentId ? { IGNITION_DEPLOYMENT_ID: options.deploymentId } : {}),
    ...(options.reset ? { IGNITION_RESET: "1" } : {}),
    ...(options.confirmations ? { IGNITION_CONFIRMATIONS: String(options.confirmations) } : {}),
    ...options.env,
  });
  const cli = require.resolve("hardhat/internal/cli/bootstrap", { paths: [REPO_ROOT] });
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      // The caller's process has compiled already (the demo, mocha under hardhat): no second compile.
      [cli, "run", "--no-compile", "--network", "rpc", "scripts/deploy.ts"],
      { cwd: REPO_ROOT, env, timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, output: stdout + stderr });
      },
    );
  });
}

/** Runs the script and reads the deployment file it wrote; throws DeployScriptError if it failed. */
export async function deployByRpc(options: DeployScriptOptions): Promise<{ deployment: TollgateDeployment; output: string }> {
  const result = await runDeployScript(options);
  if (result.code !== 0) throw new DeployScriptError(result, options.rpcUrl);
  return { deployment: readDeploymentFile(options.deploymentFile) as TollgateDeployment, output: result.output };
}
