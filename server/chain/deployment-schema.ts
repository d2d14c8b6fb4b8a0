/**
 * The deployment file's contents: where a Tollgate deployment lives (chain id, addresses, the block it was
 * deployed at) and the parameters it was deployed with, as a zod schema and its parser. Browser-safe (viem
 * and zod only), so client/ and the web app parse a deployment with the same rules as the gateway; reading
 * and writing the file itself is Node's job, in `deployment.ts`.
 */
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
