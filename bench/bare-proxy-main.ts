/**
 * The floor any Node gateway pays, for bench/gateway-latency.ts: node:http in, one undici pool out (the same
 * kind the gateway uses), the request's JSON parsed and re-serialised on the way in and the answer's on the way
 * out, and nothing else: no auth, no metering, no store, no signature. The metered gateway is measured against
 * this, side by side in one run, so what the numbers show is the price of metering rather than of Node.
 * A `text/event-stream` answer (`stream: true`) is piped through chunk by chunk as it arrives, never buffered,
 * so its time to first token is the floor a streaming Node proxy pays.
 *
 *   node -r ts-node/register/transpile-only bench/bare-proxy-main.ts --upstream http://127.0.0.1:PORT/v1
 *
 * Prints `{"url":"http://127.0.0.1:<port>/v1","port":<port>}` when listening; SIGTERM/SIGINT close it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream";
import { Pool } from "undici";

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

const upstreamArg = argument("--upstream");
if (!upstreamArg) {
  console.error("usage: bare-proxy-main.ts --upstream <base URL, e.g. http://127.0.0.1:8080/v1> [--port N]");
  process.exit(2);
}
const upstream = new URL(upstreamArg);
const pool = new Pool(upstream.origin, { connections: 128, pipelining: 1 });

function fail(res: http.ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ error: { message, type: "proxy_error" } }));
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    let body: string | undefined;
    try {
      body = chunks.length > 0 ? JSON.stringify(JSON.parse(Buffer.concat(chunks).toString("utf8"))) : undefined;
    } catch {
      return fail(res, 400, "the body is not JSON");
    }
    pool
      .request({ method: req.method as "POST", path: req.url ?? "/", headers: { "content-type": "application/json" }, body })
      .then(async (answer) => {
        const type = String(answer.headers["content-type"] ?? "");
        if (type.startsWith("text/event-stream")) {
          res.writeHead(answer.statusCode, { "content-type": type, "cache-control": "no-cache" });
          // A broken stream on either side ends both; there is nothing left to tell the client.
          pipeline(answer.body, res, () => undefined);
          return;
        }
        const text = await answer.body.text();
        const out = text ? JSON.stringify(JSON.parse(text)) : "";
        res.writeHead(answer.statusCode, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
        res.end(out);
      })
      .catch((error: Error) => fail(res, 502, `upstream: ${error.message}`));
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(argument("--port") ?? 0), "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}${upstream.pathname.replace(/\/+$/, "")}`, port }));
});
const close = () => server.close(() => void pool.close().then(() => process.exit(0)));
process.once("SIGTERM", close);
process.once("SIGINT", close);
