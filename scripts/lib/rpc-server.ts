/**
 * Serves an EIP-1193 provider (Hardhat's in-process network, `hre.network.provider`) over HTTP JSON-RPC
 * on a loopback port, so anything outside this process can use the same chain: the `tollgate` command
 * line, a wallet, a gateway running as its own OS process (the crash tests), the benches.
 *
 * The request handling is Hardhat 2's own `JsonRpcHandler` (what `hardhat node` runs: batches, CORS,
 * error shapes); the HTTP server is ours, so a port already in use is an error the caller can act on
 * rather than an uncaught exception. HTTP only: wallets and viem/ethers clients need nothing more.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { JsonRpcHandler } from "hardhat/internal/hardhat-network/jsonrpc/handler";
import type { EIP1193Provider } from "hardhat/types";

export interface RpcServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Drops open keep-alive connections (a killed client leaves none, a live one may), then closes. Safe to call twice. */
  close(): Promise<void>;
}

/** The port asked for is taken by another process. */
export class PortInUseError extends Error {
  override name = "PortInUseError";
  constructor(
    readonly host: string,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(`${host}:${port} is already in use by another process`, options);
  }
}

export async function startRpcServer(provider: EIP1193Provider, options: { hostname?: string; port?: number } = {}): Promise<RpcServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const handler = new JsonRpcHandler(provider);
  const server = http.createServer((req, res) => {
    void handler.handleHttp(req, res);
  });
  // Wallets and CLIs keep connections open between requests; a short idle timeout lets close() finish promptly.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(error.code === "EADDRINUSE" ? new PortInUseError(hostname, options.port ?? 0, { cause: error }) : error);
    };
    server.once("error", onError);
    server.listen(options.port ?? 0, hostname, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() alone waits for every keep-alive socket to end; a gateway's HTTP client keeps them.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
