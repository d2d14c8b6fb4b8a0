/**
 * client/ runs in a browser (the web app) as well as in Node: nothing it imports, directly or through
 * server/chain, may need a Node built-in or a Node-only package. This walks the real import graph from
 * client/index.ts and fails naming the first file that breaks the rule.
 */
import fs from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { expect } from "chai";

const ROOT = path.resolve(__dirname, "..", "..");
/** The packages a browser bundle of the client may contain. */
const BROWSER_PACKAGES = new Set(["viem", "zod"]);

function resolveLocal(from: string, specifier: string): string {
  const base = path.resolve(path.dirname(from), specifier);
  for (const candidate of [`${base}.ts`, path.join(base, "index.ts")]) if (fs.existsSync(candidate)) return candidate;
  throw new Error(`${path.relative(ROOT, from)} imports ${specifier}, which does not resolve to a .ts file`);
}

/** Every import and re-export (type-only ones are erased at build time and do not count). */
function importsOf(file: string): string[] {
  const source = fs.readFileSync(file, "utf8");
  const found: string[] = [];
  const pattern = /^\s*(import|export)\s+(type\s+)?[^;]*?from\s+"([^"]+)"|import\("([^"]+)"\)|^\s*import\s+"([^"]+)"/gm;
  for (const match of source.matchAll(pattern)) {
    if (match[2]) continue;
    found.push(match[3] ?? match[4] ?? match[5]);
  }
  return found;
}

function walk(entry: string): { files: Set<string>; violations: string[] } {
  const files = new Set<string>();
  const violations: string[] = [];
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of importsOf(file)) {
      if (specifier.startsWith(".")) {
        queue.push(resolveLocal(file, specifier));
        continue;
      }
      const name = specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0];
      const builtin = specifier.startsWith("node:") || builtinModules.includes(name);
      if (builtin || !BROWSER_PACKAGES.has(name)) violations.push(`${path.relative(ROOT, file)} imports "${specifier}"${builtin ? " (a Node built-in)" : " (not a browser package of the client)"}`);
    }
  }
  return { files, violations };
}

describe("client/ is browser-safe", function () {
  it("imports nothing from client/index.ts down that needs Node: no built-ins, only viem and zod", function () {
    const { files, violations } = walk(path.join(ROOT, "client", "index.ts"));
    expect(files.size, "files reached from client/index.ts").to.be.greaterThan(30);
    expect(violations).to.deep.equal([]);
  });

  it("reaches every action file in client/actions through client/index.ts", function () {
    const { files } = walk(path.join(ROOT, "client", "index.ts"));
    const actions = fs.readdirSync(path.join(ROOT, "client", "actions")).map((name) => path.join(ROOT, "client", "actions", name));
    expect(actions.filter((file) => !files.has(file))).to.deep.equal([]);
  });

  it("keeps the shared chain modules client/ may use browser-safe too: the deployment schema, batch limits, plan eligibility", function () {
    for (const name of ["deployment-schema.ts", "batch-limits.ts", "plan-eligibility.ts", "receipt-envelope.ts", "eip712.ts"]) {
      expect(walk(path.join(ROOT, "server", "chain", name)).violations, name).to.deep.equal([]);
    }
    // The file-system half of the deployment file stays out of the client's reach.
    expect(walk(path.join(ROOT, "server", "chain", "deployment.ts")).violations).to.not.deep.equal([]);
    expect([...walk(path.join(ROOT, "client", "index.ts")).files]).to.not.include(path.join(ROOT, "server", "chain", "deployment.ts"));
  });

  it("would catch a Node import: the walker flags a file that imports node:fs", function () {
    const dir = fs.mkdtempSync(path.join(require("node:os").tmpdir(), "browser-safe-"));
    fs.writeFileSync(path.join(dir, "index.ts"), 'export { a } from "./a";\n');
    fs.writeFileSync(path.join(dir, "a.ts"), 'import fs from "node:fs";\nimport type { Hex } from "viem";\nexport const a = fs;\n');
    expect(walk(path.join(dir, "index.ts")).violations).to.deep.equal([`${path.relative(ROOT, path.join(dir, "a.ts"))} imports "node:fs" (a Node built-in)`]);
  });
});
