/**
 * What each of N gateway instances on one host is: its index, signer key, usage store file and fleet id. The
 * gateway launcher and the oracle both build it from here, so the oracle settles exactly the stores the
 * instances write, under the keys they sign with.
 *
 * Stores: `<dir>/usage.sqlite` becomes `<dir>/usage.instance-<i>.sqlite` for every instance, the first
 * included. The plain name stays the store of the single-instance gateway and its base key: a store is bound
 * to the key that signed its records, so instance 1 (whose key is derived, not the base key) cannot reuse it,
 * and leaving it alone lets a plain `start-oracle` finish settling it after a switch to N instances.
 */
import path from "node:path";
import { type Address, type Hex } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { ConfigError } from "../config";
import { instanceSignerKeys, type InstanceKeys } from "./instance-keys";

/** The environment variable that asks the launcher and the oracle for N instances (`--instances N` sets it). */
export const INSTANCES_ENV = "TOLLGATE_GATEWAY_INSTANCES";
/** One host's worth: more instances than cores only adds contention, and each holds a SQLite store and a tokenizer. */
export const MAX_INSTANCES = 64;

const INSTANCE_ID = /^[\w.-]{1,64}$/;

export interface GatewayInstance {
  /** 1-based, stable across restarts: instance 2 is always the second key and the second store. */
  index: number;
  signerKey: Hex;
  signer: Address;
  storePath: string;
  /** Its name in the fleet's shared store (TOLLGATE_INSTANCE_ID). */
  instanceId: string;
}

/** The instance count in `text` (a flag or TOLLGATE_GATEWAY_INSTANCES), or a ConfigError naming `source`. */
export function parseInstanceCount(text: string, source: string): number {
  const count = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(count) || count < 1 || count > MAX_INSTANCES) {
    throw new ConfigError(`${source}: "${text}" is not a whole number of instances from 1 to ${MAX_INSTANCES}`);
  }
  return count;
}

/** The instance count the environment asks for (1 when it asks for none). */
export function instanceCountFromEnv(env: NodeJS.ProcessEnv): number {
  const text = env[INSTANCES_ENV];
  return text === undefined || text.trim() === "" ? 1 : parseInstanceCount(text, INSTANCES_ENV);
}

/** `data/usage.sqlite` → `data/usage.instance-2.sqlite`; a name without extension gets `.instance-2` appended. */
export function instanceStorePath(storePath: string, index: number): string {
  const ext = path.extname(storePath);
  const stem = ext ? storePath.slice(0, -ext.length) : storePath;
  return `${stem}.instance-${index}${ext}`;
}

/**
 * The fleet id of instance `index`: `<base>-<index>` when the config or TOLLGATE_INSTANCE_ID names the host's
 * fleet (`host-a` → `host-a-2`), else its signer address (unique across hosts, since every instance has its
 * own key).
 */
export function instanceIdOf(base: string | undefined, index: number, signer: Address): string {
  if (!base) return signer;
  const id = `${base}-${index}`;
  if (!INSTANCE_ID.test(id)) throw new ConfigError(`fleet.instanceId "${base}" makes instance ${index}'s id "${id}", which is not 1-64 letters, digits and . _ -: shorten it`);
  return id;
}

export interface InstancePlan {
  instances: GatewayInstance[];
  keySource: InstanceKeys["source"];
}

/** Every instance's identity, from the environment's keys and the configured store path (already resolved). */
export function planInstances(options: { env: NodeJS.ProcessEnv; count: number; storePath: string; instanceIdBase?: string }): InstancePlan {
  const { keys, source } = instanceSignerKeys(options.env, options.count);
  const instances = keys.map((signerKey, i) => {
    const index = i + 1;
    const signer = privateKeyToAddress(signerKey);
    return { index, signerKey, signer, storePath: instanceStorePath(options.storePath, index), instanceId: instanceIdOf(options.instanceIdBase, index, signer) };
  });
  return { instances, keySource: source };
}
