/**
 * The demo's on-demand web app build (`scripts/lib/web-app-build.ts`): left alone when present, said and
 * skipped when there is no Vite config, and a real Vite build through its JS API when missing. The app built
 * here is a one-file stand-in in a temporary folder, so the test does not depend on the real app's sources.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { ensureWebAppBuilt } from "../../scripts/lib/web-app-build";

describe("demo: the web app is built when serving finds no build", function () {
  let root: string;
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-app-build-"));
    lines.length = 0;
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("leaves an existing build alone and says nothing", async () => {
    const dist = path.join(root, "dist");
    fs.mkdirSync(dist);
    fs.writeFileSync(path.join(dist, "index.html"), "<!doctype html>");
    expect(await ensureWebAppBuilt({ dir: dist, appRoot: root, log })).to.deep.equal({ status: "present", dir: dist });
    expect(lines).to.deep.equal([]);
  });

  it("skips with a clear line when there is no Vite config", async () => {
    const outcome = await ensureWebAppBuilt({ dir: path.join(root, "dist"), appRoot: root, log });
    expect(outcome.status).to.equal("no-config");
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^web app: not built and no Vite config .*vite\.config\.ts or .*vite\.config\.mts.*serving without it/);
    expect(fs.existsSync(path.join(root, "dist"))).to.equal(false);
  });

  it("builds a missing app with Vite's JS API, with a progress line, into the directory the gateway serves", async function () {
    this.timeout(120_000);
    fs.writeFileSync(path.join(root, "index.html"), '<!doctype html><html><head><script type="module" src="./main.ts"></script></head><body></body></html>\n');
    fs.writeFileSync(path.join(root, "main.ts"), 'const greeting: string = "built by vite";\ndocument.body.textContent = greeting;\n');
    fs.writeFileSync(
      path.join(root, "vite.config.mts"),
      'import { fileURLToPath } from "node:url";\nimport { defineConfig } from "vite";\nexport default defineConfig({ root: fileURLToPath(new URL(".", import.meta.url)), base: "/app/", publicDir: false, build: { outDir: "dist", emptyOutDir: true } });\n',
    );
    // The config imports "vite": resolvable from the temporary folder through a link to this repository's packages.
    fs.symlinkSync(path.resolve(__dirname, "..", "..", "node_modules"), path.join(root, "node_modules"), "dir");
    const dist = path.join(root, "dist");
    const outcome = await ensureWebAppBuilt({ dir: dist, appRoot: root, log });
    expect(outcome.status, lines.join("\n")).to.equal("built");
    expect(lines[0]).to.match(/^web app: .*index\.html is missing; building it with Vite/);
    expect(lines.at(-1)).to.match(/^web app: built in \d+\.\ds$/);
    const index = fs.readFileSync(path.join(dist, "index.html"), "utf8");
    const script = /src="\/app\/assets\/([\w.-]+\.js)"/.exec(index);
    expect(script, index).to.not.equal(null);
    expect(fs.readFileSync(path.join(dist, "assets", script![1]), "utf8")).to.include("built by vite");
  });

  it("rebuilds a build older than the app's sources, so the demo never serves yesterday's pages", async function () {
    this.timeout(120_000);
    fs.mkdirSync(path.join(root, "src"));
    fs.writeFileSync(path.join(root, "index.html"), '<!doctype html><html><head><script type="module" src="./src/main.ts"></script></head><body></body></html>\n');
    fs.writeFileSync(path.join(root, "src", "main.ts"), 'document.body.textContent = "first";\n');
    fs.writeFileSync(
      path.join(root, "vite.config.mts"),
      'import { fileURLToPath } from "node:url";\nimport { defineConfig } from "vite";\nexport default defineConfig({ root: fileURLToPath(new URL(".", import.meta.url)), base: "/app/", publicDir: false, build: { outDir: "dist", emptyOutDir: true } });\n',
    );
    fs.symlinkSync(path.resolve(__dirname, "..", "..", "node_modules"), path.join(root, "node_modules"), "dir");
    const dist = path.join(root, "dist");
    expect((await ensureWebAppBuilt({ dir: dist, appRoot: root, log })).status).to.equal("built");
    expect((await ensureWebAppBuilt({ dir: dist, appRoot: root, log })).status, "an up-to-date build is left alone").to.equal("present");

    // The source changes after the build (its clock a minute ahead, so file systems with coarse times agree).
    const source = path.join(root, "src", "main.ts");
    fs.writeFileSync(source, 'document.body.textContent = "second";\n');
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(source, later, later);
    lines.length = 0;
    expect((await ensureWebAppBuilt({ dir: dist, appRoot: root, log })).status).to.equal("built");
    expect(lines[0]).to.match(/is older than the app's sources; rebuilding it/);
    const index = fs.readFileSync(path.join(dist, "index.html"), "utf8");
    const script = /src="\/app\/assets\/([\w.-]+\.js)"/.exec(index)!;
    expect(fs.readFileSync(path.join(dist, "assets", script[1]), "utf8")).to.include("second");
  });
});
