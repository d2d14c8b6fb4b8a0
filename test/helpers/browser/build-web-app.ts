/**
 * Builds the web app for a test run into its own temp directory, with Vite's API: always the sources as they
 * are now (never a stale app/dist), and two test processes never write over each other's build. Once per
 * process; the directory goes when the process exits.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

// Vite is an ES module only; TypeScript compiles `import()` to `require()` under CommonJS, so import it for real.
const importEsm = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<{ build(config: object): Promise<unknown> }>;

let built: Promise<string> | undefined;

export function buildWebApp(): Promise<string> {
  built ??= (async () => {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-web-app-"));
    process.once("exit", () => fs.rmSync(outDir, { recursive: true, force: true }));
    const vite = await importEsm("vite");
    await vite.build({ configFile: path.join(REPO_ROOT, "app", "vite.config.mts"), logLevel: "warn", build: { outDir, emptyOutDir: true } });
    return outDir;
  })();
  return built;
}
