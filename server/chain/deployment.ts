/**
 * The deployment file: where a Tollgate deployment lives (chain id, addresses, the block it was deployed
 * at) and the parameters it was deployed with. The deploy step writes it; the gateway, the oracle and the
 * command line read it, so no address is ever hard-coded.
 */
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { getAddress, isAddress } from "viem";

const address = z
  .string()
  .refine((value) => isAddress(value, { strict: false }), "not an address")
  .transform((value) => getAddress(value));

export const deploymentSchema = z.object({
  /** Hardhat network name (or "custom"); informational. */
  network: z.string().optional(),
  chainId: z.number().int().positive(),
  tollgate: address,
  paymentToken: address.optional(),
  /** The ERC-1155 credits token Tollgate deployed. */
  credits: address.optional(),
  /** Block of the Tollgate deployment: where log scans start. */
  deployBlock: z.number().int().min(0).optional(),
  parameters: z
    .object({
      withdrawalDelaySeconds: z.number().int().min(0),
      priceNoticeSeconds: z.number().int().min(0),
      protocolFeeBps: z.number().int().min(0),
      treasury: address,
      /** True when the payment token is the test token deployed alongside. */
      testToken: z.boolean().optional(),
    })
    .optional(),
});

export type Deployment = z.infer<typeof deploymentSchema>;

/** A deployment file that is missing, unreadable or malformed, with what to do about it. */
export class DeploymentFileError extends Error {
  override name = "DeploymentFileError";
}

export function parseDeployment(raw: unknown, source = "deployment"): Deployment {
  const parsed = deploymentSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  - ${issue.path.join(".") || "(root)"}: ${issue.message}`);
    throw new DeploymentFileError(
      `invalid deployment file ${source}:\n${lines.join("\n")}\n  (run the deploy step again, or point at its output)`,
    );
  }
  return parsed.data;
}

export function readDeploymentFile(file: string): Deployment {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new DeploymentFileError(
      `cannot read the deployment file ${file}: ${(error as Error).message}\n` +
        `  (deploy first: \`npm run deploy -- --network <name>\` or \`npx tollgate operator deploy\`)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new DeploymentFileError(`the deployment file ${file} is not valid JSON: ${(error as Error).message}`);
  }
  return parseDeployment(raw, file);
}

export function writeDeploymentFile(file: string, deployment: Deployment): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(deployment, null, 2) + "\n");
}
