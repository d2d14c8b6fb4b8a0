/**
 * A viem transport that counts the JSON-RPC calls made through it (each call of a JSON-RPC batch counts),
 * for callers that build their own client and want to know what an audit cost them at the provider.
 */
import { custom, type Transport } from "viem";

export interface RequestCounter {
  total: number;
  byMethod: Record<string, number>;
}

export function countingTransport(inner: Transport): { transport: Transport; counter: RequestCounter } {
  const counter: RequestCounter = { total: 0, byMethod: {} };
  const transport: Transport = (parameters) => {
    const built = inner(parameters);
    const counted = custom(
      {
        async request({ method, params }: { method: string; params?: unknown }) {
          counter.total++;
          counter.byMethod[method] = (counter.byMethod[method] ?? 0) + 1;
          return built.request({ method, params } as never, { retryCount: 0 } as never);
        },
      },
      { key: built.config.key, name: `counting ${built.config.name}`, retryCount: 0 },
    )(parameters);
    return counted;
  };
  return { transport, counter };
}
