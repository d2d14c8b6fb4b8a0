/**
 * An oracle for a gateway harness: its own funded gas key, reading and sending through Hardhat's
 * in-process provider, settling the harness gateway's store.
 */
import path from "node:path";
import hre from "hardhat";
import { createPublicClient, custom, toHex, type Hex, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { parseOracleConfig, type OracleConfig } from "../../server/oracle/config";
import { createOracle, type Oracle } from "../../server/oracle/oracle";
import type { GatewayHarness } from "./gateway-harness";

export interface OracleHarnessOptions {
  /** Merged into the config file's `oracle` section. */
  oracle?: Record<string, unknown>;
  /** Extra environment (e.g. more streams' signer keys). */
  env?: Record<string, string>;
  senderKey?: Hex;
}

/** Gives `address` 100 ETH of gas money on the in-process chain. */
export async function fundGas(address: string): Promise<void> {
  await hre.network.provider.request({ method: "hardhat_setBalance", params: [address, toHex(10n ** 20n)] });
}

export function oracleConfigFor(harness: GatewayHarness, options: OracleHarnessOptions & { senderKey: Hex }): OracleConfig {
  const raw = {
    chain: { rpcUrl: "http://127.0.0.1:1", deploymentFile: "deployment.json" },
    store: { path: "usage.sqlite" },
    log: { level: "silent" },
    oracle: {
      pollMs: 50,
      batch: { maxRecords: 100, maxAgeMs: 60_000 },
      retry: { initialMs: 50, maxMs: 500 },
      journalPath: path.join("oracle", `journal-${privateKeyToAddress(options.senderKey)}.json`),
      ...options.oracle,
    },
  };
  return parseOracleConfig(
    raw,
    { TOLLGATE_ORACLE_KEY: options.senderKey, TOLLGATE_GATEWAY_SIGNER_KEY: harness.signerKey, ...options.env },
    harness.dir,
  );
}

export async function startOracleHarness(harness: GatewayHarness, options: OracleHarnessOptions = {}): Promise<{ oracle: Oracle; config: OracleConfig; senderKey: Hex; client: PublicClient }> {
  const senderKey = options.senderKey ?? generatePrivateKey();
  await fundGas(privateKeyToAddress(senderKey));
  const config = oracleConfigFor(harness, { ...options, senderKey });
  const client = createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
  const oracle = await createOracle({ config, client });
  return { oracle, config, senderKey, client };
}

/** Runs a fresh oracle until every record of the gateway is settled, then stops it; `fromBlock` is where it began. */
export async function settleEverything(harness: GatewayHarness): Promise<{ client: PublicClient; fromBlock: bigint }> {
  const { oracle, client } = await startOracleHarness(harness);
  const fromBlock = await client.getBlockNumber();
  try {
    await oracle.settleAll();
  } finally {
    await oracle.close();
  }
  return { client, fromBlock };
}
