/**
 * Serves an EIP-1193 provider (in tests and benches: Hardhat's in-process network, `hre.network.provider`)
 * over HTTP JSON-RPC on a loopback port, so a gateway running as its own OS process can read the same
 * chain the test deployed to. Uses Hardhat 2's own `JsonRpcServer` (what `hardhat node` runs).
 */
import type { Server } from "node:http";
import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";
import type { EIP1193Provider } from "hardhat/types";

export interface RpcServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Drops open keep-alive connections (a killed client leaves none, a live one may), then closes. Safe to call twice. */
  close(): Promise<void>;
}

export async function startRpcServer(provider: EIP1193Provider, options: { hostname?: string; port?: number } = {}): Promise<RpcServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const server = new JsonRpcServer({ hostname, port: options.port ?? 0, provider });
  const { port } = await server.listen();
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostname}:${port}`,
    port,
    close() {
      closing ??= (async () => {
        // JsonRpcServer.close() waits for every keep-alive socket to end; a gateway's HTTP client keeps them.
        const http = (server as unknown as { _httpServer?: Server })._httpServer;
        http?.closeAllConnections?.();
        await server.close();
      })();
      return closing;
    },
  };
}
