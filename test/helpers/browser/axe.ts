/**
 * Accessibility scans with axe-core, run inside the page as it is (after the test has put it in the state to
 * check), so every view and dialog the journey reaches can be scanned, not only the first paint.
 *
 * The script is the installed `axe-core/axe.min.js`, evaluated in the page through the DevTools protocol:
 * nothing is fetched (the loopback-only browser would refuse it) and no inline <script> is added (the app's
 * Content-Security-Policy refuses those, and a test must not weaken it to look). The issue's bar is "no serious or critical
 * violations": `assertNoSeriousAxeViolations` fails on those and lists, for each, the rule, its help text
 * and the elements that fail it, so the failure message alone says what to fix. Lesser findings are
 * returned by `runAxe` for whoever wants them.
 */
import fs from "node:fs";
import type { AxeResults, ElementContext, Result, RunOptions } from "axe-core";
import type { Page } from "playwright-core";

export type AxeViolation = Result;

export interface RunAxeOptions {
  /** What to scan: a selector or axe's include/exclude object. Default: the whole document. */
  context?: ElementContext;
  /** axe's run options (`runOnly`, `rules`, ...). */
  run?: RunOptions;
}

let axeSource: string | undefined;

function loadAxeSource(): string {
  axeSource ??= fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  return axeSource;
}

/** Runs axe on the page's current DOM and returns its violations (every impact). */
export async function runAxe(page: Page, options: RunAxeOptions = {}): Promise<AxeViolation[]> {
  const loaded = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe !== "undefined");
  // Evaluated through the DevTools protocol, not added as a <script>: the app's Content-Security-Policy
  // (script-src 'self') rightly refuses inline scripts, and the test must not weaken it to look.
  if (!loaded) await page.evaluate(loadAxeSource());
  // Arguments cross as JSON; typed loosely here because Playwright's argument types recurse too deeply on axe's.
  const args = JSON.parse(JSON.stringify({ context: options.context ?? null, run: options.run ?? {} })) as { context: unknown; run: unknown };
  const results = (await page.evaluate(({ context, run }) => {
    const axe = (window as unknown as { axe: { run(context: unknown, options: unknown): Promise<unknown> } }).axe;
    return axe.run(context ?? document, run);
  }, args)) as AxeResults;
  return results.violations;
}

/** The violations the issue forbids. */
export function seriousViolations(violations: AxeViolation[]): AxeViolation[] {
  return violations.filter((violation) => violation.impact === "serious" || violation.impact === "critical");
}

/** One violation per paragraph: rule id, impact, help, link, then each failing element's target and summary. */
export function formatViolations(violations: AxeViolation[]): string {
  return violations
    .map((violation) => {
      const nodes = violation.nodes.map((node) => {
        const summary = node.failureSummary?.replace(/\s+/g, " ").trim();
        return `    - ${JSON.stringify(node.target)}${summary ? `: ${summary}` : ""}`;
      });
      return `  ${violation.id} (${violation.impact}): ${violation.help}\n    ${violation.helpUrl}\n${nodes.join("\n")}`;
    })
    .join("\n");
}

/** Fails when axe finds a serious or critical violation, listing each with its failing elements. */
export async function assertNoSeriousAxeViolations(page: Page, options: RunAxeOptions & { view?: string } = {}): Promise<void> {
  const serious = seriousViolations(await runAxe(page, options));
  if (serious.length === 0) return;
  const where = options.view ?? page.url();
  throw new Error(`${serious.length} serious or critical accessibility violation(s) on ${where}:\n${formatViolations(serious)}`);
}
