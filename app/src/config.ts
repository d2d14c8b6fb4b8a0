/**
 * What the app needs to find its deployment, served by the gateway next to the app (`/app/config.json`), so
 * one build works against any chain and any gateway: the chain, the contracts, the token, a public RPC for
 * reads, and an explorer for transaction links when the chain has one.
 */
import { z } from "zod";
import { defineChain, type Address, type Chain } from "viem";

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/) as unknown as z.ZodType<Address>;

export const appConfigSchema = z.object({
  chainId: z.number().int().positive(),
  chainName: z.string().min(1).default("Tollgate chain"),
  tollgate: address,
  credits: address,
  paymentToken: address,
  token: z.object({ symbol: z.string(), decimals: z.number().int().min(0).max(36) }),
  rpcUrl: z.string().url(),
  explorerUrl: z.string().url().nullable().optional(),
  /** The block Tollgate was deployed in (null when the deployment file does not say): where log reads start. */
  deployBlock: z.number().int().min(0).nullable().optional(),
});
export type AppConfig = z.infer<typeof appConfigSchema>;

export class ConfigLoadError extends Error {
  override name = "ConfigLoadError";
}

export async function loadConfig(): Promise<AppConfig> {
  const url = `${import.meta.env.BASE_URL}config.json`;
  let response: Response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch {
    throw new ConfigLoadError(`Cannot reach the Tollgate gateway that serves this app (${url}). Is it running? Reload once it is.`);
  }
  if (!response.ok) throw new ConfigLoadError(`The gateway answered ${url} with HTTP ${response.status}. Check that it is a Tollgate gateway with the web app enabled.`);
  const parsed = appConfigSchema.safeParse(await response.json().catch(() => undefined));
  if (!parsed.success) throw new ConfigLoadError(`The gateway's ${url} is not a deployment description this app understands: ${parsed.error.issues[0]?.message}.`);
  return parsed.data;
}

/** The viem chain for the deployment: wallets are asked to add it when they do not know it. */
export function chainOf(config: AppConfig): Chain {
  return defineChain({
    id: config.chainId,
    name: config.chainName,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [config.rpcUrl] } },
    blockExplorers: config.explorerUrl ? { default: { name: "Explorer", url: config.explorerUrl } } : undefined,
  });
}

/** Where a transaction can be looked at: the chain's explorer, or the app's own transaction page on a local chain. */
export function transactionUrl(config: AppConfig, hash: string): string {
  return config.explorerUrl ? `${config.explorerUrl.replace(/\/+$/, "")}/tx/${hash}` : `#/tx/${hash}`;
}
