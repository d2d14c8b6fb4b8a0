/**
 * `tollgate operator authorize-signers --instances N`: the provider authorizes the signer key of every gateway
 * instance at once (keys from TOLLGATE_GATEWAY_SIGNER_KEY, derived per instance, or TOLLGATE_GATEWAY_SIGNER_KEYS),
 * the same keys `start-gateway --instances N` and `start-oracle --instances N` use. Keys already authorized
 * are left alone; a key that can never sign for this provider stops the command before anything is sent.
 */
import type { Command } from "commander";
import type { Address, Hex } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { setSignerAuthorization } from "../../client";
import { tollgateAbi } from "../../server/chain/abis";
import { ConfigError } from "../../server/config";
import { instanceSignerKeys } from "../../server/gateway-instances/instance-keys";
import { parseInstanceCount } from "../../server/gateway-instances/instance-layout";
import { signerProblem } from "../../server/gateway-instances/launch-checks";
import { parseId } from "./arguments";
import { examples, type CliContext, type ContextFactory } from "./context";
import { CliError } from "./errors";

const KEY_HINT = "set TOLLGATE_GATEWAY_SIGNER_KEY (the base key the instances' keys are derived from) or TOLLGATE_GATEWAY_SIGNER_KEYS (one key per instance), as for start-gateway";

/** `--instances` as a number, or a CliError. */
export function instanceCountOption(text: string): number {
  try {
    return parseInstanceCount(text, "--instances");
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, "e.g. --instances 4");
    throw error;
  }
}

function instanceSigners(ctx: CliContext, count: number): Address[] {
  let keys: Hex[];
  try {
    keys = instanceSignerKeys(ctx.io.env, count).keys;
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, KEY_HINT);
    throw error;
  }
  return keys.map((key) => privateKeyToAddress(key));
}

async function authorizeSigners(ctx: CliContext, options: { instances: string; provider: string; dryRun?: boolean }): Promise<void> {
  const count = instanceCountOption(options.instances);
  const providerId = parseId(options.provider, "--provider");
  const signers = instanceSigners(ctx, count);
  // The key first, so a missing one is reported before the chain is asked anything.
  if (!options.dryRun) await ctx.signer();
  const conn = await ctx.connect();
  const standings = await Promise.all(
    signers.map(async (signer, i) => {
      const view = await conn.client.readContract({ address: conn.tollgate, abi: tollgateAbi, functionName: "signerOf", args: [signer] });
      const standing = { providerId: Number(view.providerId), authorized: view.authorized, compromised: view.compromised, nextSequence: view.nextSequence };
      return { index: i + 1, signer, standing, problem: signerProblem(standing, providerId) };
    }),
  );
  for (const { index, signer, problem } of standings) ctx.out.say(`instance ${index}: signer ${signer}: ${problem ?? `authorized for provider ${providerId}`}`);

  // Only "never authorized" and "revoked" are fixed by authorizing; anything else no transaction can fix.
  const fixable = (problem: string | undefined) => problem === "never authorized" || problem === "revoked";
  const blocked = standings.filter((s) => s.problem !== undefined && !fixable(s.problem));
  if (blocked.length > 0) {
    throw new CliError(
      `instance signer(s) ${blocked.map((s) => `${s.index} (${s.signer})`).join(", ")} can never sign for provider ${providerId}; nothing was sent`,
      "give those instances other keys (another base key, or other entries in TOLLGATE_GATEWAY_SIGNER_KEYS)",
    );
  }
  const results: { index: number; signer: Address; authorized: boolean; hash?: Hex }[] = [];
  for (const { index, signer, problem } of standings) {
    if (!fixable(problem) || options.dryRun) {
      results.push({ index, signer, authorized: problem === undefined });
      continue;
    }
    ctx.out.say(`authorizing instance ${index}'s signer ${signer} for provider ${providerId}`);
    const { hash } = await setSignerAuthorization(await ctx.client(), { providerId, signer, authorized: true });
    results.push({ index, signer, authorized: true, hash });
  }
  const missing = results.filter((r) => !r.authorized).length;
  ctx.out.say(
    options.dryRun
      ? `${missing} of ${count} instance signer(s) need authorizing; run again without --dry-run, with the provider owner's key, to send`
      : `all ${count} instance signers are authorized for provider ${providerId}; start them with \`tollgate operator start-gateway --instances ${count}\``,
  );
  ctx.out.result({ action: "authorize-signers", providerId, dryRun: options.dryRun === true, instances: results });
}

export function registerOperatorInstances(operator: Command, context: ContextFactory): void {
  operator
    .command("authorize-signers")
    .description("authorize the signer key of every gateway instance (start-gateway --instances N) for a provider; signed by the provider owner's key")
    .requiredOption("--instances <n>", "how many instances")
    .requiredOption("--provider <id>", "the provider the instances serve (the gateway config's providerId)")
    .option("--dry-run", "only list each instance's signer address and standing; needs no key")
    .addHelpText(
      "after",
      examples(
        "TOLLGATE_GATEWAY_SIGNER_KEY=0x… tollgate operator authorize-signers --instances 4 --provider 1 --dry-run",
        "TOLLGATE_PRIVATE_KEY=<provider owner> TOLLGATE_GATEWAY_SIGNER_KEY=0x… tollgate operator authorize-signers --instances 4 --provider 1",
      ),
    )
    .action((options: { instances: string; provider: string; dryRun?: boolean }, cmd: Command) => authorizeSigners(context(cmd), options));
}
