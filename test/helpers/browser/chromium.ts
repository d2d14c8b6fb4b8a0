/**
 * Debian's Chromium driven by `playwright-core`, shut off from everything but loopback.
 *
 * Why these choices:
 * - Debian's `/usr/bin/chromium` rather than a Playwright-downloaded browser: the machine reaches only the npm
 *   registry, so `playwright install` cannot run; apt can (`.ci/run` installs the package when it is missing).
 * - The flags stop Chromium's own background traffic (component updates, sync, field trials, first-run
 *   pings), which on a closed network would only be retried noise.
 * - A fresh temp `--user-data-dir` per launch (Playwright's persistent-context entry point is the supported
 *   way to choose it), removed on close, so no run sees another's cookies, storage or permissions.
 * - Each `newPage()` opens its own browser context: pages never share localStorage (a dapp remembers its
 *   wallet there) and each can have its own viewport (390 px for the narrow-screen checks).
 * - Every request that is not to 127.0.0.1, localhost or [::1] is aborted and recorded in
 *   `blockedRequests`, so a test can never reach the outside network and can assert it did not try.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page, type Route, type WebSocketRoute } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Without the first six Chromium keeps calling home; on this network each attempt is a failure to retry. */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  // A second wall under the request routing below, for the browser's own traffic that no page route sees
  // (DNS prefetch, preconnects): every host name but loopback fails to resolve.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
];

/** `/usr/bin/chromium` (or the path given) does not exist. */
export class ChromiumNotFoundError extends Error {
  override name = "ChromiumNotFoundError";
  constructor(readonly executablePath: string) {
    super(
      `Chromium is not installed at ${executablePath}: install Debian's chromium (apt-get install chromium), ` +
        `or run .ci/run, which installs it when it is missing`,
    );
  }
}

/** What a page reported as wrong: a `console.error` call, or an exception nothing caught. */
export interface PageError {
  kind: "console" | "pageerror";
  text: string;
  /** `url:line:column` of the console call or of the throwing frame, when Chromium says. */
  location?: string;
}

export interface ChromiumSession {
  /** Opens a page in a fresh browser context: loopback only, its errors collected (see `pageErrors`). */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  /** Closes every page opened so far with their contexts (an `afterEach` keeps memory flat); the browser stays. */
  closePages(): Promise<void>;
  /** Every URL refused because its host was not loopback, in order, across all pages of this session. */
  readonly blockedRequests: readonly string[];
  /** The temp profile directory; gone after `close()`. */
  readonly userDataDir: string;
  /** Closes every context and the browser, then removes the profile directory. Safe to call twice. */
  close(): Promise<void>;
}

export interface LaunchChromiumOptions {
  executablePath?: string;
  /** Appended to `CHROMIUM_ARGS`. */
  args?: string[];
}

const errorsByPage = new WeakMap<Page, PageError[]>();

/** The console errors and uncaught exceptions of a page opened by `newPage()`, oldest first (live array). */
export function pageErrors(page: Page): PageError[] {
  const errors = errorsByPage.get(page);
  if (!errors) throw new Error("pageErrors: this page was not opened by ChromiumSession.newPage(), so nothing collects its errors");
  return errors;
}

/**
 * Fails listing every collected error, unless each matches one of `allow` (say, a 402 the test provoked on
 * purpose). Call it at the end of a journey: "no console errors" is one of the app's quality rules.
 */
export function assertNoPageErrors(page: Page, allow: RegExp[] = []): void {
  const unexpected = pageErrors(page).filter((error) => !allow.some((pattern) => pattern.test(error.text)));
  if (unexpected.length === 0) return;
  const lines = unexpected.map((error) => `  - [${error.kind}] ${error.text}${error.location ? ` (at ${error.location})` : ""}`);
  throw new Error(`${unexpected.length} console error(s) or uncaught exception(s) on ${page.url()}:\n${lines.join("\n")}`);
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

export function isLoopbackUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  // data:, blob: and about: never leave the browser; every other scheme must name a loopback host.
  if (parsed.protocol === "data:" || parsed.protocol === "blob:" || parsed.protocol === "about:") return true;
  return LOOPBACK_HOSTS.has(parsed.hostname);
}

export async function launchChromium(options: LaunchChromiumOptions = {}): Promise<ChromiumSession> {
  const executablePath = options.executablePath ?? CHROMIUM_PATH;
  if (!fs.existsSync(executablePath)) throw new ChromiumNotFoundError(executablePath);

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-chromium-"));
  const blockedRequests: string[] = [];
  const { profile, browser } = await openProfile(executablePath, userDataDir, [...CHROMIUM_ARGS, ...(options.args ?? [])], blockedRequests);
  // A run that ends without close() (killed, or a test that forgot) still leaves no profile behind:
  // Playwright's own exit handler kills the browser first, being registered before this one.
  const removeProfile = () => fs.rmSync(userDataDir, { recursive: true, force: true });
  process.once("exit", removeProfile);

  const closePages = async () => {
    for (const context of browser.contexts()) if (context !== profile) await context.close();
  };
  let closing: Promise<void> | undefined;
  return {
    blockedRequests,
    userDataDir,
    async newPage(contextOptions: BrowserContextOptions = {}) {
      // A service worker's fetches would bypass the route below; none are needed by the app's tests.
      const context = await browser.newContext({ serviceWorkers: "block", ...contextOptions });
      await guardLoopback(context, blockedRequests);
      const page = await context.newPage();
      collectErrors(page);
      return page;
    },
    closePages,
    close() {
      closing ??= (async () => {
        try {
          await closePages();
          await profile.close();
        } finally {
          process.off("exit", removeProfile);
          removeProfile();
        }
      })();
      return closing;
    },
  };
}

/** Starts Chromium on the profile directory; on any failure nothing is left running and the directory is gone. */
async function openProfile(executablePath: string, userDataDir: string, args: string[], blocked: string[]): Promise<{ profile: BrowserContext; browser: Browser }> {
  let profile: BrowserContext | undefined;
  try {
    profile = await chromium.launchPersistentContext(userDataDir, { executablePath, headless: true, args, serviceWorkers: "block" });
    // The profile's own context gets the guard too: it holds the initial blank tab.
    await guardLoopback(profile, blocked);
    const browser = profile.browser();
    if (!browser) throw new Error("launchChromium: Playwright returned a persistent context without its browser");
    return { profile, browser };
  } catch (error) {
    await profile?.close().catch(() => undefined);
    fs.rmSync(userDataDir, { recursive: true, force: true });
    throw error;
  }
}

async function guardLoopback(context: BrowserContext, blocked: string[]): Promise<void> {
  await context.route("**/*", (route: Route) => {
    const url = route.request().url();
    if (isLoopbackUrl(url)) return route.continue();
    blocked.push(url);
    return route.abort("blockedbyclient");
  });
  // WebSockets are not HTTP requests to `route`; they get the same rule.
  await context.routeWebSocket(/.*/, (ws: WebSocketRoute) => {
    if (isLoopbackUrl(ws.url())) {
      ws.connectToServer();
      return;
    }
    blocked.push(ws.url());
    void ws.close({ code: 1008, reason: "blocked: not loopback" });
  });
}

function collectErrors(page: Page): void {
  const errors: PageError[] = [];
  errorsByPage.set(page, errors);
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const { url, lineNumber, columnNumber } = message.location();
    errors.push({ kind: "console", text: message.text(), location: url ? `${url}:${lineNumber}:${columnNumber}` : undefined });
  });
  page.on("pageerror", (error) => {
    const frame = error.stack?.split("\n").find((line) => line.trimStart().startsWith("at "));
    errors.push({ kind: "pageerror", text: `${error.name}: ${error.message}`, location: frame?.trim().replace(/^at /, "") });
  });
}
