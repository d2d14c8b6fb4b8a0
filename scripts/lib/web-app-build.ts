/**
 * The demo's web app, built on demand: `npm run demo -- --serve` should open on a working app, not on the
 * gateway's "not built" page, yet a fresh checkout has no `app/dist` (it is not committed). When the build is
 * missing it is made once through Vite's JS API; when there is no Vite config (a checkout without the app),
 * that is said and the demo serves on without it.
 */
import fs from "node:fs";
import path from "node:path";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
/** The app's Vite config, under either name Vite gives a TypeScript config. */
const CONFIG_NAMES = ["vite.config.ts", "vite.config.mts"];

interface ViteBuildApi {
  build(config: { configFile: string; logLevel: "warn" }): Promise<unknown>;
}

export type WebAppBuildOutcome =
  | { status: "present"; dir: string }
  | { status: "built"; dir: string; seconds: number }
  | { status: "no-config"; looked: string[] }
  | { status: "failed"; error: string };

export interface EnsureWebAppBuiltOptions {
  /** Where the gateway serves the build from (its `app.dir`). */
  dir: string;
  /** The folder holding the app's Vite config (default: the repository's `app/`). */
  appRoot?: string;
  log: (line: string) => void;
}

/** The newest modification time under `paths` (files and folders, recursively); 0 when none exists. */
function newestMtime(paths: readonly string[]): number {
  let newest = 0;
  const visit = (entry: string) => {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(entry);
    } catch {
      return;
    }
    if (stat.isDirectory()) for (const name of fs.readdirSync(entry)) visit(path.join(entry, name));
    else newest = Math.max(newest, stat.mtimeMs);
  };
  paths.forEach(visit);
  return newest;
}

export async function ensureWebAppBuilt({ dir, appRoot = path.join(REPO_ROOT, "app"), log }: EnsureWebAppBuiltOptions): Promise<WebAppBuildOutcome> {
  const index = path.join(dir, "index.html");
  if (fs.existsSync(index)) {
    // A build older than the sources (the app's, and the client and chain code it bundles) would serve yesterday's
    // pages: rebuild it. A build without sources beside it (an installed copy) is served as it is.
    const sources = [path.join(appRoot, "src"), path.join(appRoot, "index.html"), path.join(REPO_ROOT, "client"), path.join(REPO_ROOT, "server", "chain")];
    const newestSource = fs.existsSync(path.join(appRoot, "src")) ? newestMtime(sources) : 0;
    if (newestSource <= fs.statSync(index).mtimeMs) return { status: "present", dir };
    log(`web app: ${path.relative(REPO_ROOT, dir) || dir} is older than the app's sources; rebuilding it`);
  }
  const candidates = CONFIG_NAMES.map((name) => path.join(appRoot, name));
  const configFile = candidates.find((file) => fs.existsSync(file));
  if (!configFile) {
    log(`web app: not built and no Vite config (${candidates.map((file) => path.relative(REPO_ROOT, file)).join(" or ")}): serving without it; /app/ says how to build it`);
    return { status: "no-config", looked: candidates };
  }
  if (!fs.existsSync(index)) log(`web app: ${path.relative(REPO_ROOT, dir) || dir}/index.html is missing; building it with Vite (${path.relative(REPO_ROOT, configFile)}), once...`);
  const started = Date.now();
  try {
    // Vite's types need the "bundler" or "node16" module resolution; this repository's Node code uses "node".
    // The slice of its API used here is typed by hand, and the specifier is a variable so tsc does not look.
    const specifier = "vite";
    const vite = (await import(specifier)) as ViteBuildApi;
    await vite.build({ configFile, logLevel: "warn" });
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    log(`web app: the build failed (${message}); serving without it. Run \`npm run app:build\` to see the whole error.`);
    return { status: "failed", error: message };
  }
  const seconds = (Date.now() - started) / 1000;
  if (!fs.existsSync(path.join(dir, "index.html"))) {
    const error = `Vite built, but not into ${dir}, where the gateway serves from (check build.outDir in ${path.relative(REPO_ROOT, configFile)} and the gateway's app.dir)`;
    log(`web app: ${error}`);
    return { status: "failed", error };
  }
  log(`web app: built in ${seconds.toFixed(1)}s`);
  return { status: "built", dir, seconds };
}
