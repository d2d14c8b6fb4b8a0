/**
 * The gateway serves the web app's build at /app over real HTTP: the index never cached, hashed assets cached
 * for a year, a strict Content-Security-Policy on the HTML, `config.json` naming the deployment as the chain
 * has it, a 503 page saying what to run when there is no build, and nothing outside the build directory.
 * The build here is a stand-in written to a temporary directory (the real one is the app's own business).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { getAddress } from "viem";
import { createApp } from "../../server/gateway/app";
import type { WebAppRuntimeConfig } from "../../server/gateway/routes/web-app";
import { startGatewayHarness, type GatewayHarness } from "../helpers/gateway-harness";

const INDEX = '<!doctype html><html lang="en"><head><script type="module" src="/app/assets/index-Bx7a9f3c.js"></script></head><body><div id="root"></div></body></html>\n';
const SCRIPT = 'console.log("tollgate web app");\n';
const PUBLIC_RPC = "https://rpc.example.test:8545/v1/abc";
const EXPECTED_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' https://rpc.example.test:8545; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

describe("gateway: the web app at /app", function () {
  let h: GatewayHarness;
  let root: string;
  let dist: string;

  before(async function () {
    this.timeout(120_000);
    root = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-app-"));
    dist = path.join(root, "dist");
    fs.mkdirSync(path.join(dist, "assets"), { recursive: true });
    fs.writeFileSync(path.join(dist, "index.html"), INDEX);
    fs.writeFileSync(path.join(dist, "assets", "index-Bx7a9f3c.js"), SCRIPT);
    fs.writeFileSync(path.join(dist, "favicon.svg"), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    // Beside the build, never under it: must never be served.
    fs.writeFileSync(path.join(root, "secret.txt"), "not for browsers");
    h = await startGatewayHarness({ config: { app: { dir: dist, publicRpcUrl: PUBLIC_RPC, explorerUrl: "https://explorer.example.test" } } });
  });
  after(async () => {
    await h?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const get = (urlPath: string, init: RequestInit = {}) => fetch(`${h.url}${urlPath}`, { redirect: "manual", ...init });

  function expectHtmlHeaders(response: Response): void {
    expect(response.headers.get("content-type")).to.match(/^text\/html\b/);
    expect(response.headers.get("content-security-policy")).to.equal(EXPECTED_CSP);
    expect(response.headers.get("x-content-type-options")).to.equal("nosniff");
  }

  it("redirects /app to /app/, keeping the query", async () => {
    const response = await get("/app");
    expect(response.status).to.equal(301);
    expect(response.headers.get("location")).to.equal("/app/");
    const withQuery = await get("/app?view=usage");
    expect(withQuery.status).to.equal(301);
    expect(withQuery.headers.get("location")).to.equal("/app/?view=usage");
  });

  it("serves index.html at /app/ and /app/index.html, never cached, with the CSP and nosniff", async () => {
    for (const urlPath of ["/app/", "/app/index.html"]) {
      const response = await get(urlPath);
      expect(response.status, urlPath).to.equal(200);
      expectHtmlHeaders(response);
      expect(response.headers.get("cache-control")).to.equal("no-cache");
      expect(await response.text()).to.equal(INDEX);
    }
  });

  it("answers the index for the app's own routes (a reload of /app/usage), but never for a missing file", async () => {
    const route = await get("/app/provider/batches");
    expect(route.status).to.equal(200);
    expectHtmlHeaders(route);
    expect(await route.text()).to.equal(INDEX);

    for (const urlPath of ["/app/assets/index-missing.js", "/app/missing.png", "/app/assets/", "/app/assets/nested/file.js", "/app/.env"]) {
      const response = await get(urlPath);
      expect(response.status, urlPath).to.equal(404);
      expect(response.headers.get("content-type"), urlPath).to.match(/^text\/plain\b/);
      expect(await response.text(), urlPath).to.not.include("<html");
    }
  });

  it("serves hashed assets immutable for a year, and top-level build files (icons) revalidated", async () => {
    const script = await get("/app/assets/index-Bx7a9f3c.js");
    expect(script.status).to.equal(200);
    expect(script.headers.get("content-type")).to.match(/javascript/);
    expect(script.headers.get("cache-control")).to.equal("public, max-age=31536000, immutable");
    expect(script.headers.get("x-content-type-options")).to.equal("nosniff");
    expect(await script.text()).to.equal(SCRIPT);

    const icon = await get("/app/favicon.svg");
    expect(icon.status).to.equal(200);
    expect(icon.headers.get("content-type")).to.match(/^image\/svg\+xml/);
    expect(icon.headers.get("cache-control")).to.equal("no-cache");
  });

  it("serves nothing outside the build directory, however the path is spelled", async () => {
    for (const urlPath of ["/app/assets/..%2f..%2fsecret.txt", "/app/..%2fsecret.txt", "/app/%2e%2e/secret.txt", "/app/assets/%2e%2e%2f%2e%2e%2fsecret.txt"]) {
      const response = await get(urlPath);
      const text = await response.text();
      expect(text, urlPath).to.not.include("not for browsers");
      expect([400, 404], `${urlPath}: ${response.status}`).to.include(response.status);
    }
  });

  it("GET /app/config.json names the deployment, its token and the public RPC as the chain has them", async () => {
    const response = await get("/app/config.json");
    expect(response.status).to.equal(200);
    expect(response.headers.get("content-type")).to.match(/^application\/json\b/);
    expect(response.headers.get("cache-control")).to.equal("no-cache");
    const config = (await response.json()) as WebAppRuntimeConfig;
    const tollgate = h.market.tollgate;
    expect(config).to.deep.equal({
      chainId: Number(h.market.chainId),
      chainName: "Local development chain",
      tollgate: getAddress(await tollgate.getAddress()),
      credits: getAddress(await tollgate.credits()),
      paymentToken: getAddress(await tollgate.paymentToken()),
      token: { symbol: await h.market.token.symbol(), decimals: Number(await h.market.token.decimals()) },
      rpcUrl: PUBLIC_RPC,
      explorerUrl: "https://explorer.example.test",
      // The harness's deployment file names no deploy block.
      deployBlock: null,
    });
    expect(config.token.decimals).to.equal(6);
  });

  it("passes the deployment file's deploy block on in config.json, so the browser's log reads start there", async () => {
    const app = createApp(h.gateway.ctx, { maxBodyBytes: 1024, requestsPerMinute: 0, app: { ...h.config.app, deployBlock: 7 } });
    const server = http.createServer(app).listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/app/config.json`);
      expect(((await response.json()) as WebAppRuntimeConfig).deployBlock).to.equal(7);
    } finally {
      server.close();
    }
  });

  it("answers 503 with a page saying how to build when the build is missing; config.json still answers", async () => {
    const index = path.join(dist, "index.html");
    fs.renameSync(index, `${index}.away`);
    try {
      for (const urlPath of ["/app/", "/app/index.html", "/app/keys"]) {
        const response = await get(urlPath);
        expect(response.status, urlPath).to.equal(503);
        expectHtmlHeaders(response);
        const page = await response.text();
        expect(page.toLowerCase()).to.include("the web app is not built: run <code>npm run app:build</code>");
        expect(page).to.include(dist);
      }
      expect((await get("/app/config.json")).status).to.equal(200);
    } finally {
      fs.renameSync(`${index}.away`, index);
    }
    expect((await get("/app/")).status).to.equal(200);
  });

  it("leaves the API as it was: other methods under /app and unknown URLs get OpenAI's error JSON", async () => {
    const post = await get("/app/", { method: "POST" });
    expect(post.status).to.equal(404);
    expect(((await post.json()) as { error: { code: string } }).error.code).to.equal("unknown_url");
    const models = await get("/v1/models");
    expect(models.status).to.equal(200);
    expect(models.headers.get("content-security-policy")).to.equal(null);
    expect((await get("/application")).status).to.equal(404);
  });
});
