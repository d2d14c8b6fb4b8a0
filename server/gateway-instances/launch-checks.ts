/**
 * What the launcher checks before it starts a single instance: that N instances share reservations (else each
 * could spend a buyer's whole balance), and that every instance's key may sign for the provider (else every
 * metered call on that instance would be refused, or its batches would never settle).
 */
import type { Address, PublicClient } from "viem";
import { tollgateAbi } from "../chain/abis";
import { ConfigError, type GatewayConfig } from "../config";
import type { GatewayInstance } from "./instance-layout";

/** The command that authorizes every instance key, run by the provider's owner with the same gateway key settings. */
export function authorizeSignersCommand(count: number, providerId: number): string {
  return `tollgate operator authorize-signers --instances ${count} --provider ${providerId}`;
}

/** N > 1 instances need the fleet's shared store: without it each reserves against the chain on its own. */
export function requireSharedStore(count: number, config: Pick<GatewayConfig, "fleet">): void {
  if (count < 2 || config.fleet) return;
  throw new ConfigError(
    `${count} instances need a shared store, and the config has no "fleet" section.\n` +
      `  Each instance reserves a buyer's money knowing only its own calls, so a buyer spreading calls across ${count} instances could\n` +
      `  spend up to ${count}x its balance before settlement catches up, and the provider would carry the shortfall.\n` +
      `  Add to the config:  "fleet": { "redisUrl": "redis://127.0.0.1:6379" }  (a Redis every instance reaches), or run one instance.`,
  );
}

export interface SignerStanding {
  instance: GatewayInstance;
  providerId: number;
  authorized: boolean;
  compromised: boolean;
  nextSequence: bigint;
}

/** Why a key may not sign for `providerId`, or undefined when it may. */
export function signerProblem(standing: Omit<SignerStanding, "instance">, providerId: number): string | undefined {
  if (standing.compromised) return "marked compromised (a fraud proof against it was accepted): it can never sign again; use another key";
  if (standing.providerId === 0) return "never authorized";
  if (standing.providerId !== providerId) return `authorized for provider ${standing.providerId}, not ${providerId} (a key serves one provider for life): use another key`;
  if (!standing.authorized) return "revoked";
  return undefined;
}

export async function readSignerStandings(client: PublicClient, tollgate: Address, instances: readonly GatewayInstance[]): Promise<SignerStanding[]> {
  return Promise.all(
    instances.map(async (instance) => {
      const view = await client.readContract({ address: tollgate, abi: tollgateAbi, functionName: "signerOf", args: [instance.signer] });
      return { instance, providerId: Number(view.providerId), authorized: view.authorized, compromised: view.compromised, nextSequence: view.nextSequence };
    }),
  );
}

/** A ConfigError listing every instance whose key may not sign for the provider, and the command that fixes it. */
export function requireAuthorizedSigners(standings: readonly SignerStanding[], providerId: number, count: number): void {
  const problems = standings
    .map((standing) => ({ standing, problem: signerProblem(standing, providerId) }))
    .filter((entry) => entry.problem !== undefined);
  if (problems.length === 0) return;
  const lines = problems.map(({ standing, problem }) => `  - instance ${standing.instance.index} (signer ${standing.instance.signer}): ${problem}`);
  throw new ConfigError(
    `${problems.length} of ${count} instance signer(s) may not sign for provider ${providerId}:\n${lines.join("\n")}\n` +
      `  Authorize them with \`${authorizeSignersCommand(count, providerId)}\` (the provider owner's key in TOLLGATE_PRIVATE_KEY, ` +
      `and the same TOLLGATE_GATEWAY_SIGNER_KEY or TOLLGATE_GATEWAY_SIGNER_KEYS as here), then start again.`,
  );
}
