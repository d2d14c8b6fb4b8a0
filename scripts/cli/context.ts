/**
 * What every command shares: the global options, output (human lines or one JSON object), the chain
 * connection (RPC client, deployment file, payment token) and the signing key. This module is the CLI's
 * one reader of the environment, and only through `io.env`, so tests run the CLI in-process with their own.
 */
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { Wallet } from "ethers";
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type Address,
  type Chain,
  type Hex,
  type HttpTransport,
  type LocalAccount,
  type PublicClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createTollgateClient, getPaymentToken, withWallet, type TollgateClient, type TollgateGatewayClient, type TransactionProgress } from "../../client";
import { readDeploymentFile, type Deployment } from "../../server/chain/deployment";
import { formatAmount, parseAmount, type ParseAmountOptions, type TokenUnits } from "./amounts";
import { CliError, type ErrorContext } from "./errors";

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** Environment variables the CLI reads; named in help and error messages so users know what to set. */
export const ENV = {
  rpc: "TOLLGATE_RPC_URL",
  deployment: "TOLLGATE_DEPLOYMENT",
  gateway: "TOLLGATE_GATEWAY_URL",
  privateKey: "TOLLGATE_PRIVATE_KEY",
  keystore: "TOLLGATE_KEYSTORE",
  keystorePassword: "TOLLGATE_KEYSTORE_PASSWORD",
  apiKey: "TOLLGATE_API_KEY",
} as const;

export const DEFAULTS = {
  rpc: "http://127.0.0.1:8545",
  deployment: "deployments/localhost.json",
  gateway: "http://127.0.0.1:8787",
} as const;

export const KEY_SETUP_HINT =
  `set ${ENV.privateKey}=0x<64 hex digits>, or ${ENV.keystore}=<path to an encrypted JSON keystore> with ${ENV.keystorePassword}. ` +
  "Keys are never read from the command line (shell history and process lists would keep them); " +
  "`tollgate keystore create <file>` makes a keystore";

export interface GlobalOptions {
  rpc: string;
  deployment: string;
  gateway: string;
  json: boolean;
  /** Global options given on the command line (not defaulted), e.g. to pass --rpc on to a server. */
  explicit: ReadonlySet<string>;
}

/** Builds the context of one command run from its (global) options; see index.ts. */
export type ContextFactory = (cmd: Command) => CliContext;

/** The "Examples:" block of a command's --help. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join("\n")}\n`;
}

/** A non-empty environment variable, or undefined: an exported empty variable counts as unset. */
export function envValue(env: CliIo["env"], name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** JSON cannot hold bigints; amounts travel as decimal strings of base units, as the gateway's API does. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? v.toString() : v), 2);
}

/** Human mode prints lines as the command goes; `--json` prints one object at the end instead. */
export class Output {
  constructor(
    private readonly io: CliIo,
    readonly json: boolean,
  ) {}

  say(text = ""): void {
    if (!this.json) this.io.stdout.write(`${text}\n`);
  }

  result(data: Record<string, unknown>): void {
    if (this.json) this.io.stdout.write(`${toJson(data)}\n`);
  }

  /** A note that is not the result (e.g. a gateway that could not be reached); stderr in both modes. */
  warn(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }
}

export interface PaymentToken extends TokenUnits {
  address: Address;
}

export interface Connection {
  client: PublicClient;
  chain: Chain;
  deployment: Deployment;
  tollgate: Address;
  token: PaymentToken;
  /** The client layer over this connection, without a wallet (see `CliContext.client`). */
  tollgateClient: TollgateClient;
}

/**
 * The signing key from the environment: a raw private key or an encrypted keystore, never both. Returns the
 * secret itself, for the one caller that hands it on (deploying through hardhat.config's "rpc" network).
 */
export async function loadPrivateKey(env: CliIo["env"]): Promise<Hex> {
  const privateKey = envValue(env, ENV.privateKey);
  const keystore = envValue(env, ENV.keystore);
  if (privateKey && keystore) {
    throw new CliError(`both ${ENV.privateKey} and ${ENV.keystore} are set`, "unset one of them, so it is unambiguous which key signs");
  }
  if (privateKey) {
    // Never echo the value: a typo'd key is still most of a key.
    if (!/^0x[0-9a-fA-F]{64}$/.test(privateKey)) {
      throw new CliError(`${ENV.privateKey} is not a private key`, "it must be 0x followed by 64 hex digits (32 bytes)");
    }
    try {
      privateKeyToAccount(privateKey as Hex);
    } catch {
      throw new CliError(`${ENV.privateKey} is not a valid secp256k1 private key`, "generate one with `tollgate keystore create <file>`");
    }
    return privateKey as Hex;
  }
  if (keystore) {
    const password = env[ENV.keystorePassword];
    if (password === undefined || password === "") {
      throw new CliError(`${ENV.keystore} is set but ${ENV.keystorePassword} is not`, `export ${ENV.keystorePassword} with the keystore's password`);
    }
    let json: string;
    try {
      json = fs.readFileSync(keystore, "utf8");
    } catch (error) {
      throw new CliError(`cannot read the keystore ${keystore}: ${(error as Error).message}`, `point ${ENV.keystore} at an existing keystore file`);
    }
    try {
      return (await Wallet.fromEncryptedJson(json, password)).privateKey as Hex;
    } catch {
      throw new CliError(`cannot decrypt the keystore ${keystore}`, `check ${ENV.keystorePassword}, and that the file is an Ethereum JSON keystore`);
    }
  }
  throw new CliError("no signing key: this command signs a transaction or a message", KEY_SETUP_HINT);
}

export async function loadAccount(env: CliIo["env"]): Promise<LocalAccount> {
  return privateKeyToAccount(await loadPrivateKey(env));
}

export class CliContext {
  readonly out: Output;
  private connection: Promise<Connection> | undefined;
  private connected: Connection | undefined;
  private account: Promise<LocalAccount> | undefined;

  constructor(
    readonly io: CliIo,
    readonly options: GlobalOptions,
  ) {
    this.out = new Output(io, options.json);
  }

  /** What error messages may use: the RPC URL, and amounts with decimals once the token is known. */
  errorContext(): ErrorContext {
    const token = this.connected?.token;
    return { rpcUrl: this.options.rpc, formatAmount: token ? (value) => formatAmount(value, token) : undefined };
  }

  deploymentPath(): string {
    return path.resolve(this.options.deployment);
  }

  readDeployment(): Deployment {
    return readDeploymentFile(this.deploymentPath());
  }

  connect(): Promise<Connection> {
    this.connection ??= this.openConnection().then((connection) => (this.connected = connection));
    return this.connection;
  }

  private async openConnection(): Promise<Connection> {
    const deployment = this.readDeployment();
    const rpc = this.options.rpc;
    const transport = this.transport();
    const probe = createPublicClient({ transport });
    const chainId = await probe.getChainId();
    if (chainId !== deployment.chainId) {
      throw new CliError(
        `the deployment file ${this.options.deployment} is for chain ${deployment.chainId}, but the RPC at ${rpc} serves chain ${chainId}`,
        "point --rpc (TOLLGATE_RPC_URL) at the chain of the deployment, or --deployment (TOLLGATE_DEPLOYMENT) at this chain's deployment file",
      );
    }
    const chain = defineChain({
      id: chainId,
      name: deployment.network ?? `chain ${chainId}`,
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [rpc] } },
    });
    const client = createPublicClient({ chain, transport, pollingInterval: 1_000 }) as PublicClient;
    const code = await client.getCode({ address: deployment.tollgate });
    if (!code || code === "0x") {
      throw new CliError(
        `there is no contract at ${deployment.tollgate} on chain ${chainId} (from ${this.options.deployment})`,
        "deploy first (`tollgate operator deploy`); a restarted local node forgets its contracts, so deploy again after restarting it",
      );
    }
    // The token Tollgate holds, not the one the file names: the file may be older than a redeploy.
    const tollgateClient = await createTollgateClient({
      publicClient: client,
      deployment: { chainId, tollgate: deployment.tollgate, credits: deployment.credits },
      gateway: { url: this.options.gateway },
    });
    const { address, decimals, symbol } = await getPaymentToken(tollgateClient);
    return { client, chain, deployment, tollgate: deployment.tollgate, token: { address, decimals, symbol }, tollgateClient };
  }

  /** One retry: a CLI should fail fast and say the chain is down, not back off for half a minute. */
  private transport(): HttpTransport {
    return http(this.options.rpc, { retryCount: 1, timeout: 20_000 });
  }

  signer(): Promise<LocalAccount> {
    this.account ??= loadAccount(this.io.env);
    return this.account;
  }

  /** "12.5 tUSD" in the deployment's payment token. */
  async amount(value: bigint): Promise<string> {
    return formatAmount(value, (await this.connect()).token);
  }

  async parseAmount(text: string, options?: ParseAmountOptions): Promise<bigint> {
    return parseAmount(text, (await this.connect()).token, options);
  }

  /** An amount for `--json` output: base units (exact) beside the formatted form (readable). */
  money(value: bigint): { units: string; formatted: string } {
    const token = this.connected?.token;
    if (!token) throw new Error("money() before connect()");
    return { units: value.toString(), formatted: formatAmount(value, token) };
  }

  /**
   * The client layer over the checked connection, signing with the key from the environment (loaded
   * first, so a missing key is reported before the chain is asked anything). Each transaction's hash is
   * printed as soon as it is known.
   */
  async client(): Promise<TollgateClient> {
    const account = await this.signer();
    const { chain, tollgateClient } = await this.connect();
    const wallet = createWalletClient({ account, chain, transport: this.transport() });
    return withWallet(tollgateClient, wallet, (progress) => this.printTransaction(progress));
  }

  /**
   * A client for the gateway's wallet-signed requests (API keys). They are bound to the deployment's chain id
   * and Tollgate address but read nothing from the chain, so this one is built from the deployment file
   * alone: the key commands work without a reachable RPC, as they always have.
   */
  async gatewayClient(): Promise<TollgateGatewayClient> {
    const account = await this.signer();
    const { chainId, tollgate } = this.readDeployment();
    return { wallet: createWalletClient({ account, transport: this.transport() }), contracts: { chainId, tollgate }, gateway: { url: this.options.gateway } };
  }

  private printTransaction(progress: TransactionProgress): void {
    if (progress.stage === "pending") this.out.say(`  ${progress.description}: tx ${progress.hash}`);
  }
}
