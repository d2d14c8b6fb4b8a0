/**
 * Anvil (`@foundry-rs/anvil` from npm) as its own process on a free loopback port, for tests that need a chain
 * this process does not run: the marketplace end to end on a second kind of node, real reorganisations
 * (`anvil_reorg`), Ignition deployment by RPC URL and key. Stopped with `stop()`, and killed on exit whatever
 * happens.
 *
 *   const anvil = await startAnvil();               // automine, chain 31337, the default mnemonic's 10 accounts
 *   await deployByRpc({ rpcUrl: anvil.url, deployerKey: anvil.keys[0], ... });
 *   await anvil.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createPublicClient, http, toHex, type Hex, type PublicClient } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { devChain, type DevChain } from "../../scripts/lib/dev-chain";

/** Anvil's (and Hardhat's) default development mnemonic: its accounts are public, for local chains only. */
export const ANVIL_MNEMONIC = "test test test test test test test test test test test junk";
const START_TIMEOUT_MS = 30_000;

export interface AnvilOptions {
  /** Seconds between blocks (interval mining); default: automine, one block per transaction. */
  blockTime?: number;
  chainId?: number;
  /** Dev accounts to create from the mnemonic (default 10). */
  accounts?: number;
  /** More command-line arguments. */
  args?: string[];
}

export interface Anvil {
  url: string;
  port: number;
  pid: number;
  chainId: number;
  /** Private keys of the dev accounts, funded with 10,000 ETH each. */
  keys: Hex[];
  client: PublicClient;
  /** evm_mine, evm_increaseTime, anvil_setBalance, and `request` for the rest (anvil_reorg). */
  dev: DevChain;
  /** What Anvil printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** The platform's Anvil binary, spawned directly (not through the npm wrapper script) so killing its pid stops the node itself. */
function anvilBinary(): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  try {
    return require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/anvil`);
  } catch {
    return path.join(path.dirname(require.resolve("@foundry-rs/anvil/package.json")), "bin.mjs");
  }
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function startAnvil(options: AnvilOptions = {}): Promise<Anvil> {
  const chainId = options.chainId ?? 31337;
  const accounts = options.accounts ?? 10;
  const args = ["--host", "127.0.0.1", "--port", "0", "--chain-id", String(chainId), "--accounts", String(accounts), "--mnemonic", ANVIL_MNEMONIC];
  if (options.blockTime !== undefined) args.push("--block-time", String(options.blockTime));
  args.push(...(options.args ?? []));
  const child = spawn(anvilBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => running.delete(child));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(`Anvil did not start listening within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    function fail(message: string) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${message}\n--- anvil output ---\n${output.slice(-4_000)}`));
    }
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (output.length > 64_000) output = output.slice(-32_000);
      const listening = /Listening on [\d.]+:(\d+)/.exec(output);
      if (listening) {
        clearTimeout(timer);
        resolve(Number(listening[1]));
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("error", (error) => fail(`Anvil could not be started (${anvilBinary()}): ${error.message}`));
    void exited.then(() => fail(`Anvil exited before listening (code ${child.exitCode}, signal ${child.signalCode})`));
  });

  const url = `http://127.0.0.1:${port}`;
  const client = createPublicClient({ transport: http(url), pollingInterval: 50 }) as PublicClient;
  const keys = Array.from({ length: accounts }, (_, addressIndex) => toHex(mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex }).getHdKey().privateKey!));
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    pid: child.pid!,
    chainId,
    keys,
    client,
    dev: devChain("anvil", (request) => client.request(request as never)),
    output: () => output,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        await exited;
      })();
      return stopping;
    },
  };
}
