/**
 * Deploys the whole system (Tollgate, its credits token and, unless a payment token is given, the TestUSD
 * mock) through Hardhat Ignition, reads the result back from the chain and describes it as a deployment file
 * (server/chain/deployment.ts). One function for `npm run deploy`, the marketplace script, the CLI and tests.
 *
 *   const deployment = await deployTollgate(hre, { protocolFeeBps: 100n }, { deploymentFile: "deployments/x.json" });
 *
 * Where Ignition keeps its journal: nowhere on Hardhat's in-process network (every call is a fresh
 * deployment); on any other network in ignition/deployments/<deploymentId>, so a deployment interrupted on
 * a real chain resumes where it stopped, and deploying again with the same parameters returns the same
 * contracts instead of a second system.
 */
import fs from "node:fs";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { HardhatArtifactResolver, resolveDeploymentId } from "@nomicfoundation/hardhat-ignition/helpers";
import { listTransactions, TransactionStatus, type DeployConfig } from "@nomicfoundation/ignition-core";
import { getAddress, isAddress, zeroAddress, type Address } from "viem";
import {
  TOLLGATE_DEFAULTS,
  TollgateModule,
  TollgateWithTestTokenModule,
} from "../../ignition/modules/Tollgate";
import { parseDeployment, writeDeploymentFile, type Deployment } from "../../server/chain/deployment";

/** What a Tollgate is deployed with. Every field is optional; the defaults are in TOLLGATE_DEFAULTS. */
export interface TollgateDeployParameters {
  /** The ERC-20 buyers pay in. Omitted or the zero address: deploy the TestUSD mock and use it. */
  paymentToken?: Address;
  withdrawalDelaySeconds?: bigint;
  priceNoticeSeconds?: bigint;
  protocolFeeBps?: bigint;
  /** Where protocol fees are swept. Default: the deploying account. */
  treasury?: Address;
  /** Who may pause, set the fee and the treasury (Ownable2Step). Default: the deploying account. */
  owner?: Address;
}

export interface DeployTollgateOptions {
  /** Also write the deployment file there (parent directories are created). */
  deploymentFile?: string;
  /** The account that sends the transactions; one of the network's accounts. Default: the first. */
  deployer?: Address;
  /** Ignition deployment id, naming the journal folder. Default: `chain-<chainId>`. Unused in-process (no journal). */
  deploymentId?: string;
  /** Forget this deployment id's journal first, so everything is deployed anew. Not for the in-process network. */
  reset?: boolean;
  /** Blocks to wait on a chain that does not mine on demand. Default: hardhat.config's `ignition`, else Ignition's 5. */
  requiredConfirmations?: number;
  /** Ignition's own progress display (useful on slow chains). */
  displayUi?: boolean;
  /** Progress lines. Default: silent. */
  log?: (line: string) => void;
}

/** A deployment file with every field this deploy step knows filled in. */
export type TollgateDeployment = Deployment &
  Required<Pick<Deployment, "network" | "paymentToken" | "credits" | "deployBlock" | "parameters">>;

/** Parameters that cannot be deployed, each problem on its own line. */
export class DeployParameterError extends Error {
  override name = "DeployParameterError";
}

/**
 * Why a deployment failed, for callers that add their own advice (the deploy script names its variables):
 * - `rejected`: Ignition refused the module or a transaction failed (a contract revert names its custom error);
 * - `journal-conflict`: Ignition's journal for this deployment id holds other parameters (keep, or start anew);
 * - `journal-failed`: a previous run under this deployment id failed (start anew);
 * - `journal-stale`: the journal records contracts this (non-development) chain does not have;
 * - `account`: no usable deployer account;
 * - `mismatch`: what the chain reports differs from what was asked.
 */
export type TollgateDeployFailure = "rejected" | "journal-conflict" | "journal-failed" | "journal-stale" | "account" | "mismatch";

/** The deployment failed or its result does not match what was asked for. */
export class TollgateDeployError extends Error {
  override name = "TollgateDeployError";
  constructor(
    message: string,
    readonly reason: TollgateDeployFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Chain ids of local development nodes (Hardhat, Anvil, Ganache), whose state dies with the process. */
const DEV_CHAIN_IDS = new Set([31337, 1337]);

/**
 * Deploys Tollgate on `hre`'s network and returns its deployment file contents, built from what the
 * contracts report (not from what was asked), so the file cannot claim parameters the chain does not have.
 */
export async function deployTollgate(
  hre: HardhatRuntimeEnvironment,
  params: TollgateDeployParameters = {},
  options: DeployTollgateOptions = {},
): Promise<TollgateDeployment> {
  const log = options.log ?? (() => {});
  const provider = hre.ethers.provider;
  const chainId = Number((await provider.getNetwork()).chainId);
  const deployer = await resolveDeployer(hre, options.deployer);
  const withTestToken = params.paymentToken === undefined || params.paymentToken === zeroAddress;
  const ignitionModule = withTestToken ? TollgateWithTestTokenModule : TollgateModule;
  const wanted = {
    withdrawalDelaySeconds: params.withdrawalDelaySeconds ?? TOLLGATE_DEFAULTS.withdrawalDelaySeconds,
    priceNoticeSeconds: params.priceNoticeSeconds ?? TOLLGATE_DEFAULTS.priceNoticeSeconds,
    protocolFeeBps: params.protocolFeeBps ?? TOLLGATE_DEFAULTS.protocolFeeBps,
    // Resolved here rather than left to the module's m.getAccount(0), which would be wrong for another deployer.
    treasury: params.treasury ?? deployer,
    owner: params.owner ?? deployer,
  };
  for (const [name, value] of Object.entries(wanted)) {
    if (typeof value === "bigint" && (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER))) {
      throw new DeployParameterError(`${name} must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, got ${value}`);
    }
  }

  // Hardhat's in-process network gets no journal from the Ignition plugin; every other network does.
  const ephemeral = hre.network.name === "hardhat";
  const deploymentId = resolveDeploymentId(options.deploymentId, chainId);
  const deploymentDir = ephemeral ? undefined : path.join(hre.config.paths.ignition, "deployments", deploymentId);
  const tollgateFutureId = `${ignitionModule.id}#Tollgate`;
  let resumed = false;
  if (deploymentDir !== undefined) {
    if (options.reset) {
      fs.rmSync(deploymentDir, { recursive: true, force: true });
      log(`  reset: removed Ignition's journal ${path.relative(process.cwd(), deploymentDir)}`);
    } else {
      resumed = await checkJournal(hre, deploymentDir, chainId, tollgateFutureId, log);
    }
  }

  log(
    `deploying ${ignitionModule.id} to ${hre.network.name} (chain ${chainId}) from ${deployer}` +
      (deploymentDir ? ` [Ignition journal ${path.relative(process.cwd(), deploymentDir)}]` : ""),
  );
  const firstNewBlock = (await provider.getBlockNumber()) + 1;
  const { strategyConfig: _strategies, ...configured } = hre.config.ignition;
  const config: Partial<DeployConfig> = {
    ...configured,
    ...(options.requiredConfirmations !== undefined ? { requiredConfirmations: options.requiredConfirmations } : {}),
  };
  let deployed: { tollgate: { getAddress(): Promise<string> } };
  try {
    deployed = await hre.ignition.deploy(ignitionModule, {
      parameters: {
        [ignitionModule.id]: {
          ...(withTestToken ? {} : { paymentToken: params.paymentToken! }),
          ...wanted,
        },
      },
      defaultSender: deployer,
      deploymentId: options.deploymentId,
      config,
      displayUi: options.displayUi ?? false,
    });
  } catch (error) {
    throw ignitionFailure(error, deploymentId);
  }

  const tollgateAddress = getAddress(await deployed.tollgate.getAddress());
  if ((await provider.getCode(tollgateAddress)) === "0x") {
    throw new TollgateDeployError(`Ignition reported Tollgate at ${tollgateAddress}, but there is no code there`, "mismatch");
  }
  const tollgate = await hre.ethers.getContractAt("Tollgate", tollgateAddress);
  const [paymentToken, withdrawalDelay, priceNotice, feeBps, treasury, owner, credits] = await Promise.all([
    tollgate.paymentToken(),
    tollgate.withdrawalDelay(),
    tollgate.priceNoticePeriod(),
    tollgate.protocolFeeBps(),
    tollgate.treasury(),
    tollgate.owner(),
    tollgate.credits(),
  ]);
  const actual = { withdrawalDelaySeconds: withdrawalDelay, priceNoticeSeconds: priceNotice, protocolFeeBps: feeBps, treasury, owner };
  const mismatches = Object.entries(wanted)
    .filter(([name, value]) => String(actual[name as keyof typeof actual]).toLowerCase() !== String(value).toLowerCase())
    .map(([name, value]) => `${name}: asked ${value}, the contract has ${actual[name as keyof typeof actual]}`);
  if (!withTestToken && getAddress(paymentToken) !== getAddress(params.paymentToken!)) {
    mismatches.push(`paymentToken: asked ${params.paymentToken}, the contract has ${paymentToken}`);
  }
  if (mismatches.length > 0) {
    throw new TollgateDeployError(
      `the deployed Tollgate ${tollgateAddress} differs from the parameters:\n  ${mismatches.join("\n  ")}`,
      "mismatch",
    );
  }

  const deployBlock = deploymentDir
    ? await deployBlockFromJournal(hre, deploymentDir, tollgateAddress)
    : await deployBlockFromScan(hre, tollgateAddress, firstNewBlock);
  if (resumed) log(`  ${tollgateFutureId} was already deployed by an earlier run; nothing new was sent`);
  log(`  ${withTestToken ? "TestUSD (6 decimals, permit) " : "payment token (existing)     "} ${getAddress(paymentToken)}`);
  log(`  Tollgate                      ${tollgateAddress}  (block ${deployBlock})`);
  log(`  TollgateCredits (ERC-1155)    ${getAddress(credits)}`);
  log(`  withdrawal delay ${withdrawalDelay}s, price notice ${priceNotice}s, fee ${feeBps} bps, treasury ${treasury}, owner ${owner}`);

  const deployment = parseDeployment(
    {
      network: hre.network.name,
      chainId,
      tollgate: tollgateAddress,
      paymentToken,
      credits,
      deployBlock,
      parameters: {
        withdrawalDelaySeconds: Number(withdrawalDelay),
        priceNoticeSeconds: Number(priceNotice),
        protocolFeeBps: Number(feeBps),
        treasury,
        testToken: withTestToken,
      },
    },
    `the deployment of ${tollgateAddress}`,
  ) as TollgateDeployment;
  if (options.deploymentFile !== undefined) {
    writeDeploymentFile(options.deploymentFile, deployment);
    log(`wrote ${path.relative(process.cwd(), options.deploymentFile)}`);
  }
  return deployment;
}

/** Names of the deploy parameters in the environment `npm run deploy` reads. */
export const DEPLOY_PARAMETER_ENV = {
  paymentToken: "PAYMENT_TOKEN",
  withdrawalDelaySeconds: "WITHDRAWAL_DELAY_SECONDS",
  priceNoticeSeconds: "PRICE_NOTICE_SECONDS",
  protocolFeeBps: "PROTOCOL_FEE_BPS",
  treasury: "TREASURY",
  owner: "OWNER",
} as const satisfies Record<keyof TollgateDeployParameters, string>;

/**
 * Parses deploy parameters given as text (environment variables, command-line flags). Empty or missing
 * means default. `names` says what each is called where the user typed it, for the error message; every
 * problem is reported at once. Ranges the contract enforces (the fee cap) are left to it, so its custom
 * error is the one answer.
 */
export function parseDeployParameters(
  raw: Partial<Record<keyof TollgateDeployParameters, string | undefined>>,
  names: Partial<Record<keyof TollgateDeployParameters, string>> = {},
): TollgateDeployParameters {
  const problems: string[] = [];
  const label = (key: keyof TollgateDeployParameters) => names[key] ?? key;
  const present = (key: keyof TollgateDeployParameters) => {
    const value = raw[key]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const whole = (key: "withdrawalDelaySeconds" | "priceNoticeSeconds" | "protocolFeeBps"): bigint | undefined => {
    const value = present(key);
    if (value === undefined) return undefined;
    // Seconds and basis points: plain decimal digits, no units, signs or exponents that could be misread.
    if (!/^\d+$/.test(value) || BigInt(value) > BigInt(Number.MAX_SAFE_INTEGER)) {
      problems.push(`${label(key)} must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, got "${value}"`);
      return undefined;
    }
    return BigInt(value);
  };
  const address = (key: "paymentToken" | "treasury" | "owner"): Address | undefined => {
    const value = present(key);
    if (value === undefined) return undefined;
    // Strict: a mixed-case address with a wrong checksum is a typo, not an address.
    if (!isAddress(value)) {
      problems.push(`${label(key)} must be a 0x-prefixed 20-byte address with a valid checksum, got "${value}"`);
      return undefined;
    }
    return getAddress(value);
  };
  const parsed: TollgateDeployParameters = {
    paymentToken: address("paymentToken"),
    withdrawalDelaySeconds: whole("withdrawalDelaySeconds"),
    priceNoticeSeconds: whole("priceNoticeSeconds"),
    protocolFeeBps: whole("protocolFeeBps"),
    treasury: address("treasury"),
    owner: address("owner"),
  };
  if (problems.length > 0) throw new DeployParameterError(`invalid deploy parameters:\n  - ${problems.join("\n  - ")}`);
  return Object.fromEntries(Object.entries(parsed).filter(([, value]) => value !== undefined));
}

/** The deploy parameters from PAYMENT_TOKEN, WITHDRAWAL_DELAY_SECONDS, ... (see DEPLOY_PARAMETER_ENV). */
export function deployParametersFromEnv(env: NodeJS.ProcessEnv): TollgateDeployParameters {
  const raw = Object.fromEntries(Object.entries(DEPLOY_PARAMETER_ENV).map(([key, name]) => [key, env[name]]));
  return parseDeployParameters(raw, DEPLOY_PARAMETER_ENV);
}

async function resolveDeployer(hre: HardhatRuntimeEnvironment, wanted: Address | undefined): Promise<Address> {
  // The accounts Ignition will see: it asks the provider the same way.
  const accounts = (await hre.network.provider.request({ method: "eth_accounts" })) as string[];
  if (accounts.length === 0) {
    throw new TollgateDeployError(
      `network ${hre.network.name} has no account to deploy from (for the "rpc" network set TOLLGATE_DEPLOYER_KEY)`,
      "account",
    );
  }
  if (wanted === undefined) return getAddress(accounts[0]);
  if (!accounts.some((account) => account.toLowerCase() === wanted.toLowerCase())) {
    throw new TollgateDeployError(`the deployer ${wanted} is not one of network ${hre.network.name}'s accounts`, "account");
  }
  return getAddress(wanted);
}

/**
 * Checks an existing journal still describes this chain, and says whether Tollgate is already in it. A
 * local node restarted since the journal was written has none of its contracts: on a development chain that
 * journal is obsolete and is removed; on any other chain that is too surprising to act on alone.
 */
async function checkJournal(
  hre: HardhatRuntimeEnvironment,
  deploymentDir: string,
  chainId: number,
  tollgateFutureId: string,
  log: (line: string) => void,
): Promise<boolean> {
  const addressesFile = path.join(deploymentDir, "deployed_addresses.json");
  if (!fs.existsSync(addressesFile)) return false;
  const recorded = JSON.parse(fs.readFileSync(addressesFile, "utf8")) as Record<string, string>;
  const missing: string[] = [];
  for (const [futureId, address] of Object.entries(recorded)) {
    if ((await hre.ethers.provider.getCode(address)) === "0x") missing.push(`${futureId} (${address})`);
  }
  if (missing.length === 0) return tollgateFutureId in recorded;
  const where = path.relative(process.cwd(), deploymentDir);
  if (DEV_CHAIN_IDS.has(chainId)) {
    fs.rmSync(deploymentDir, { recursive: true, force: true });
    log(`  ${where} records contracts this chain does not have (the node was restarted): removed it`);
    return false;
  }
  throw new TollgateDeployError(
    `Ignition's journal ${where} records contracts with no code on chain ${chainId}: ${missing.join(", ")}.\n` +
      `  Is this the right network? To deploy anew regardless, reset the journal or use another deployment id.`,
    "journal-stale",
  );
}

/** The block of the Tollgate creation transaction, as recorded in Ignition's journal. */
async function deployBlockFromJournal(hre: HardhatRuntimeEnvironment, deploymentDir: string, tollgate: Address): Promise<number> {
  const transactions = await listTransactions(deploymentDir, new HardhatArtifactResolver(hre));
  const creation = transactions.find(
    (tx) => tx.status === TransactionStatus.SUCCESS && tx.address !== undefined && getAddress(tx.address) === tollgate,
  );
  if (creation === undefined) {
    throw new TollgateDeployError(`Ignition's journal ${deploymentDir} has no transaction creating ${tollgate}`, "mismatch");
  }
  const receipt = await hre.ethers.provider.getTransactionReceipt(creation.txHash);
  if (receipt === null) {
    throw new TollgateDeployError(`the chain does not know Tollgate's creation transaction ${creation.txHash}`, "mismatch");
  }
  return receipt.blockNumber;
}

/**
 * The block of the Tollgate creation transaction, found among the blocks mined during this deployment.
 * Only for the in-process network: there Ignition keeps no journal, and nothing else mines meanwhile.
 */
async function deployBlockFromScan(hre: HardhatRuntimeEnvironment, tollgate: Address, fromBlock: number): Promise<number> {
  const provider = hre.ethers.provider;
  const latest = await provider.getBlockNumber();
  for (let number = fromBlock; number <= latest; number++) {
    const block = await provider.getBlock(number);
    for (const hash of block?.transactions ?? []) {
      const receipt = await provider.getTransactionReceipt(hash);
      if (receipt?.contractAddress && getAddress(receipt.contractAddress) === tollgate) return receipt.blockNumber;
    }
  }
  throw new TollgateDeployError(`no transaction in blocks ${fromBlock}..${latest} created Tollgate at ${tollgate}`, "mismatch");
}

/**
 * Ignition's failure as a TollgateDeployError. The plugin hands back only a message, whose opening line
 * (from hardhat-ignition's errorDeploymentResultToExceptionMessage) says which kind of result it was.
 */
function ignitionFailure(error: unknown, deploymentId: string): TollgateDeployError {
  const message = error instanceof Error ? error.message : String(error);
  if (/because of the following reconciliation errors/.test(message)) {
    return new TollgateDeployError(
      `${message}\n  Ignition's journal for "${deploymentId}" holds a deployment with other parameters: deploy with ` +
        `the same parameters to keep it, or deploy anew under another deployment id or after a reset.`,
      "journal-conflict",
      { cause: error },
    );
  }
  if (/because of the following errors in a previous run/.test(message)) {
    return new TollgateDeployError(
      `${message}\n  A previous run under "${deploymentId}" failed; reset its journal to start over.`,
      "journal-failed",
      { cause: error },
    );
  }
  return new TollgateDeployError(message, "rejected", { cause: error });
}
