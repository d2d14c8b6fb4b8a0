/**
 * The gateway's HTTP surface as an express app, built from a ready `GatewayContext` (no listen, no
 * chain or database setup here), so tests drive it in-process and `main.ts` serves it.
 */
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { errorHandler, GatewayError, sendGatewayError } from "./errors";
import { authenticate, authenticateReader, authenticateSession } from "./middleware/authenticate";
import { rateLimit } from "./middleware/rate-limit";
import { requestContext, routeLabel } from "./middleware/request-context";
import { createKey, listKeys, listKeysOfReader, revokeKey } from "./routes/api-keys";
import { balance } from "./routes/balance";
import { createBudget, deleteBudget, listBudgets, listBudgetsOfReader } from "./routes/budgets";
import { chatCompletions } from "./routes/chat-completions";
import type { GatewayContext } from "./context";
import { embeddings } from "./routes/embeddings";
import { getModel, listModels } from "./routes/models";
import { closeSession, openSession } from "./routes/sessions";
import { recordOutcome } from "./routes/outcomes";
import { usage } from "./routes/usage";
import { usageSummary } from "./routes/usage-summary";
import { webApp, type WebAppOptions } from "./routes/web-app";

export interface AppOptions {
  maxBodyBytes: number;
  requestsPerMinute: number;
  /** Flipped by graceful shutdown: new calls get 503 while in-flight ones finish. */
  isDraining?: () => boolean;
  /** The web app served at `/app` (its build, the public RPC and explorer); without it `/app` is not served. */
  app?: WebAppOptions;
}

/** Express 5 forwards rejected promises to the error handler; this keeps handler signatures uniform. */
const handle = (fn: (req: Request, res: Response) => unknown): RequestHandler => (req, res, next) => {
  Promise.resolve(fn(req, res)).catch(next);
};

/**
 * Runs a route's handlers in order the way express's router would (`next()` to go on, `next(error)` to the
 * error handler), without the router: the metered routes carry nearly all the traffic, and matching every
 * layer's path on every call cost allocations the profile showed (issue 12).
 */
function runChain(handlers: readonly RequestHandler[], onError: ErrorRequestHandler, req: Request, res: Response): void {
  let index = 0;
  const next = (error?: unknown): void => {
    if (error !== undefined && error !== null) return onError(error, req, res, () => undefined) as void;
    const handler = handlers[index++];
    if (!handler) return;
    try {
      handler(req, res, next);
    } catch (thrown) {
      next(thrown);
    }
  };
  next();
}

/** `application/json`, exactly as clients send it, on a request with a body: the common case, without type-is. */
function plainJsonRequest(req: Request): boolean {
  const { headers } = req;
  return headers["content-type"] === "application/json" && (headers["transfer-encoding"] !== undefined || !Number.isNaN(Number(headers["content-length"])));
}

export function createApp(ctx: GatewayContext, options: AppOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "simple");

  const json = express.json({
    limit: options.maxBodyBytes,
    strict: false,
    // Every route that parses JSON checks the media type first (requireJson); do not check it twice.
    type: () => true,
    // Keep the exact bytes: the receipt's request hash is over what the buyer sent.
    verify: (req, _res, buffer) => {
      (req as Request).rawBody = buffer;
    },
  });
  const requireJson: RequestHandler = (req, _res, next) => {
    if (!plainJsonRequest(req) && !req.is("application/json")) {
      return next(new GatewayError(415, "invalid_request_error", "Send the request body as JSON with `Content-Type: application/json`.", "unsupported_media_type"));
    }
    next();
  };
  const drain: RequestHandler = (_req, _res, next) => {
    if (options.isDraining?.()) {
      return next(new GatewayError(503, "server_error", "The gateway is shutting down. Retry shortly.", "shutting_down", null, { "retry-after": "1" }));
    }
    next();
  };
  const auth = authenticate(ctx.keys);
  const reader = authenticateReader(ctx.keys, ctx.store);
  const limit = rateLimit(options.requestsPerMinute);

  const onError = errorHandler((error, req) => ctx.logger.error({ err: error, requestId: req.id }, "unhandled error"));
  const chat = [routeLabel("chat.completions"), drain, requireJson, json, auth, limit, handle(chatCompletions(ctx))];
  const embed = [routeLabel("embeddings"), drain, requireJson, json, auth, limit, handle(embeddings(ctx))];

  app.use(requestContext(ctx.logger, ctx.metrics));
  // The metered routes, by exact path, straight to their handlers; any other spelling (a trailing slash, a
  // query string, another case) still reaches the same handlers through the router below.
  app.use((req, res, next) => {
    if (req.method !== "POST") return next();
    if (req.url === "/v1/chat/completions") return runChain(chat, onError, req, res);
    if (req.url === "/v1/embeddings") return runChain(embed, onError, req, res);
    next();
  });
  app.post("/v1/chat/completions", ...chat);
  app.post("/v1/embeddings", ...embed);

  app.get("/health", routeLabel("health"), (_req, res) => {
    const ok = ctx.state.canSettle() && !options.isDraining?.();
    res.status(ok ? 200 : 503).json({
      status: ok ? "ok" : "degraded",
      signer: ctx.meter.signerAddress,
      signer_authorized: ctx.state.canSettle(),
      draining: options.isDraining?.() ?? false,
      next_sequence: ctx.store.nextSequence().toString(),
      open_reservations: ctx.ledger.openReservations(),
    });
  });
  app.get(
    "/metrics",
    routeLabel("metrics"),
    handle(async (_req, res) => {
      ctx.metrics.openReservations.set(ctx.ledger.openReservations());
      res.setHeader("content-type", ctx.metrics.registry.contentType);
      res.send(await ctx.metrics.registry.metrics());
    }),
  );

  if (options.app) app.use("/app", routeLabel("app"), webApp(ctx, options.app));

  app.get("/v1/models", routeLabel("models"), listModels(ctx));
  app.get("/v1/models/*id", routeLabel("model"), (req, res) => {
    const id = req.params.id as unknown as string[];
    req.params.id = id.join("/") as never;
    getModel(ctx)(req, res);
  });

  app.get("/v1/balance", routeLabel("balance"), reader, handle(balance(ctx)));
  app.get("/v1/usage", routeLabel("usage"), reader, handle(usage(ctx)));
  app.get("/v1/usage/summary", routeLabel("usage.summary"), reader, handle(usageSummary(ctx)));
  app.post("/v1/outcomes", routeLabel("outcomes"), requireJson, json, auth, limit, handle(recordOutcome(ctx)));
  app.get("/v1/keys", routeLabel("keys.read"), reader, handle(listKeysOfReader(ctx)));
  app.post("/v1/keys", routeLabel("keys.create"), requireJson, json, handle(createKey(ctx)));
  app.post("/v1/keys/list", routeLabel("keys.list"), requireJson, json, handle(listKeys(ctx)));
  app.post("/v1/keys/revoke", routeLabel("keys.revoke"), requireJson, json, handle(revokeKey(ctx)));
  app.get("/v1/budgets", routeLabel("budgets.read"), reader, handle(listBudgetsOfReader(ctx)));
  app.post("/v1/budgets", routeLabel("budgets.create"), requireJson, json, handle(createBudget(ctx)));
  app.post("/v1/budgets/list", routeLabel("budgets.list"), requireJson, json, handle(listBudgets(ctx)));
  app.post("/v1/budgets/delete", routeLabel("budgets.delete"), requireJson, json, handle(deleteBudget(ctx)));
  app.post("/v1/sessions", routeLabel("sessions.open"), requireJson, json, handle(openSession(ctx)));
  app.delete("/v1/sessions/current", routeLabel("sessions.close"), authenticateSession(ctx.store), handle(closeSession(ctx)));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new GatewayError(404, "invalid_request_error", `Unknown request URL: ${req.method} ${req.path}. See the README for the gateway's endpoints.`, "unknown_url"));
  });
  app.use(onError);
  return app;
}

export { sendGatewayError };
