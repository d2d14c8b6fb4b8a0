/**
 * The web app under `/app`: the Vite build's `index.html` (never cached, so a new build is picked up at once),
 * its content-hashed `assets/` (cached for a year: a new build has new names), and `config.json`, which tells
 * the browser where the deployment is. The HTML carries a strict Content-Security-Policy: the app's own
 * scripts only, and connections to the gateway and the public RPC only.
 *
 * Paths without an extension (`/app/usage`) answer the index, so the app's own routes survive a reload; a
 * missing file with an extension is a plain 404, never the index (a script tag must not get HTML). Files at
 * the top of the build (Vite copies `public/` there: icons, robots.txt) are served with `no-cache`.
 * Without a build, the pages answer 503 with what to run.
 */
import fs from "node:fs";
import path from "node:path";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Address, Chain } from "viem";
import * as chains from "viem/chains";
import type { WebAppConfig } from "../../config";
import type { GatewayContext } from "../context";

/** What `GET /app/config.json` answers: everything the browser needs to find the deployment. */
export interface WebAppRuntimeConfig {
  chainId: number;
  chainName: string;
  tollgate: Address;
  credits: Address;
  paymentToken: Address;
  token: { symbol: string; decimals: number };
  rpcUrl: string;
  explorerUrl: string | null;
  /** The block Tollgate was deployed in (from the deployment file), where log reads start; null when the file does not say. */
  deployBlock: number | null;
}

const ONE_YEAR_SECONDS = 31_536_000;
/** One path segment of a file the build could have written: no traversal, no dotfiles. */
const FILE_NAME = /^[\w-][\w.-]*$/;

export function contentSecurityPolicy(publicRpcUrl: string): string {
  const rpcOrigin = new URL(publicRpcUrl).origin;
  return [
    "default-src 'self'",
    "script-src 'self'",
    // React and chart.js set style attributes; no inline script is ever allowed.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    `connect-src 'self' ${rpcOrigin}`,
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
  ].join("; ");
}

/** Development chain ids several tools share (viem lists Hardhat, Anvil and Foundry under 31337): named as what they are. */
const LOCAL_CHAINS: Record<number, string> = { 31337: "Local development chain", 1337: "Local development chain" };

function chainNameOf(chainId: number, network: string | undefined): string {
  if (LOCAL_CHAINS[chainId]) return network && network !== "custom" ? `${LOCAL_CHAINS[chainId]} (${network})` : LOCAL_CHAINS[chainId];
  const known = (Object.values(chains) as unknown[]).find((chain): chain is Chain => typeof chain === "object" && chain !== null && (chain as Chain).id === chainId);
  return known?.name ?? network ?? `chain ${chainId}`;
}

function notBuiltPage(dir: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Tollgate: web app not built</title></head>
<body>
<main>
<h1>The web app is not built</h1>
<p>The web app is not built: run <code>npm run app:build</code> in the Tollgate repository, then reload this page.</p>
<p>The gateway looks for the build in <code>${escapeHtml(dir)}</code> (the <code>app.dir</code> setting of its config file).</p>
</main>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface WebAppOptions extends WebAppConfig {
  /** The deployment file's network name, for the chain's name when viem does not know the chain id. */
  network?: string;
  /** The deployment file's deploy block, passed on to the browser so its log reads need not search for it. */
  deployBlock?: number;
}

export function webApp(ctx: GatewayContext, app: WebAppOptions): RequestHandler {
  const csp = contentSecurityPolicy(app.publicRpcUrl);
  const indexFile = path.join(app.dir, "index.html");
  let runtimeConfig: Promise<WebAppRuntimeConfig> | undefined;

  const configOf = (): Promise<WebAppRuntimeConfig> => {
    runtimeConfig ??= (async () => {
      const credits = await ctx.state.reader.creditsToken();
      return {
        chainId: ctx.chainId,
        chainName: chainNameOf(ctx.chainId, app.network),
        tollgate: ctx.tollgate,
        credits,
        paymentToken: ctx.state.token.address,
        token: { symbol: ctx.state.token.symbol, decimals: ctx.state.token.decimals },
        rpcUrl: app.publicRpcUrl,
        explorerUrl: app.explorerUrl,
        deployBlock: app.deployBlock ?? null,
      };
    })();
    // A failed chain read is retried by the next request rather than remembered.
    runtimeConfig.catch(() => (runtimeConfig = undefined));
    return runtimeConfig;
  };

  const sendIndex = (res: Response, next: NextFunction) => {
    res.setHeader("content-security-policy", csp);
    if (!fs.existsSync(indexFile)) {
      res.status(503).setHeader("cache-control", "no-store").type("html").send(notBuiltPage(app.dir));
      return;
    }
    // `root`, so a dot in the build directory's own path (~/.local/...) is not taken for a dotfile.
    res.sendFile("index.html", { root: app.dir, cacheControl: false, lastModified: false, headers: { "cache-control": "no-cache" } }, (error) => error && next(error));
  };

  const notFound = (req: Request, res: Response) => {
    res.status(404).setHeader("cache-control", "no-store").type("text/plain").send(`Not found: ${req.path}. The web app is at /app/.\n`);
  };

  /** `file` is relative to the build directory and already checked to be plain names (no `..`, no dotfiles). */
  const sendFileOr404 = (req: Request, res: Response, next: NextFunction, file: string, cacheControl: string) => {
    fs.stat(path.join(app.dir, file), (error, stats) => {
      if (error || !stats.isFile()) return notFound(req, res);
      res.sendFile(file, { root: app.dir, cacheControl: false, lastModified: false, headers: { "cache-control": cacheControl } }, (sendError) => sendError && next(sendError));
    });
  };

  return (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    // `req.path` is relative to the mount point ("/app"); `originalUrl` tells "/app" from "/app/".
    const [pathname, query = ""] = req.originalUrl.split(/\?(.*)/s);
    if (pathname === "/app") return res.redirect(301, `/app/${query ? `?${query}` : ""}`);
    res.setHeader("x-content-type-options", "nosniff");
    const rest = req.path.replace(/^\/+/, "");
    if (rest === "" || rest === "index.html") return sendIndex(res, next);
    if (rest === "config.json") {
      configOf().then(
        (config) => res.setHeader("cache-control", "no-cache").json(config),
        (error: unknown) => next(error),
      );
      return;
    }
    const segments = rest.split("/");
    if (segments.length === 2 && segments[0] === "assets" && FILE_NAME.test(segments[1])) {
      return sendFileOr404(req, res, next, `assets/${segments[1]}`, `public, max-age=${ONE_YEAR_SECONDS}, immutable`);
    }
    if (segments.length === 1 && FILE_NAME.test(segments[0]) && segments[0].includes(".")) {
      return sendFileOr404(req, res, next, segments[0], "no-cache");
    }
    if (segments[0] !== "assets" && segments.every((segment) => /^[\w-]+$/.test(segment))) return sendIndex(res, next);
    notFound(req, res);
  };
}
