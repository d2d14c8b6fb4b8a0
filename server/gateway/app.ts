/**
 * The gateway's HTTP surface as an express app, built from a ready `GatewayContext` (no listen, no
 * chain or database setup here), so tests drive it in-process and `main.ts` serves it; the metered routes'
 * exact paths are served before express by the data plane (http/data-plane.ts), with the same answers.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { errorHandler, GatewayError, gatewayErrorOf, sendGatewayError, shuttingDown, unsupportedMediaType } from "./errors";
import { RequestIds } from "./http/request-ids";
import { createDataPlane } from "./http/data-plane";
import type { MeteredHandler, MeteredRequest } from "./http/metered-request";
import { authenticate, authenticateReader, authenticateSession } from "./middleware/authenticate";
import { RateLimiter, rateLimit } from "./middleware/rate-limit";
import { requestContext, requestObserver, routeLabel } from "./middleware/request-context";
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

/** `application/json`, exactly as clients send it, on a request with a body: the common case, without type-is. */
function plainJsonRequest(req: Request): boolean {
  const { headers } = req;
  return headers["content-type"] === "application/json" && (headers["transfer-encoding"] !== undefined || !Number.isNaN(Number(headers["content-length"])));
}

/** The gateway's HTTP surface: the express app, and the listener to serve, which hands the metered routes to the data plane first. */
export interface GatewayHttp {
  app: express.Express;
  listener: (req: IncomingMessage, res: ServerResponse) => void;
}

export function createApp(ctx: GatewayContext, options: AppOptions): express.Express {
  return createGatewayHttp(ctx, options).app;
}

export function createGatewayHttp(ctx: GatewayContext, options: AppOptions): GatewayHttp {
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
    if (!plainJsonRequest(req) && !req.is("application/json")) return next(unsupportedMediaType());
    next();
  };
  const drain: RequestHandler = (_req, _res, next) => {
    if (options.isDraining?.()) return next(shuttingDown());
    next();
  };
  const auth = authenticate(ctx.keys);
  const reader = authenticateReader(ctx.keys, ctx.store, undefined, ctx.fleetSessions);
  const limiter = new RateLimiter(options.requestsPerMinute);
  const limit = rateLimit(limiter);

  const onUnexpected = (error: unknown, requestId: string) => ctx.logger.error({ err: error, requestId }, "unhandled error");
  const onError = errorHandler((error, req) => onUnexpected(error, req.id));
  const chatHandler = chatCompletions(ctx);
  const embeddingsHandler = embeddings(ctx);
  /** A metered handler behind express's chain (the spellings of the metered paths the data plane leaves to express). */
  const metered =
    (handler: MeteredHandler): RequestHandler =>
    (req, res) => {
      const request: MeteredRequest = { id: req.id, headers: req.headers, body: req.body, rawBody: req.rawBody ?? Buffer.alloc(0), apiKey: req.apiKey!, responseHeaders: [] };
      handler(request, res).catch((error: unknown) => {
        const answer = gatewayErrorOf(error, (unexpected) => onUnexpected(unexpected, req.id));
        if (answer) sendGatewayError(res, answer, request.responseHeaders);
      });
    };

  const ids = new RequestIds((id) => ctx.store.hasRequestId(id));
  const plane = createDataPlane({
    maxBodyBytes: options.maxBodyBytes,
    isDraining: options.isDraining,
    keys: ctx.keys,
    limiter,
    observe: requestObserver(ctx.logger, ctx.metrics),
    onUnexpected,
    routes: {
      "/v1/chat/completions": { label: "chat.completions", handler: chatHandler },
      "/v1/embeddings": { label: "embeddings", handler: embeddingsHandler },
    },
    ids,
  });

  app.use(requestContext(ctx.logger, ctx.metrics, ids));
  // Reached only by what the data plane leaves to express: another spelling of these paths (a trailing slash, a
  // query string, another case) or another shape of request (a compressed body, another media type).
  app.post("/v1/chat/completions", routeLabel("chat.completions"), drain, requireJson, json, auth, limit, metered(chatHandler));
  app.post("/v1/embeddings", routeLabel("embeddings"), drain, requireJson, json, auth, limit, metered(embeddingsHandler));

  app.get("/health", routeLabel("health"), (_req, res) => {
    const ok = ctx.state.canSettle() && !options.isDraining?.() && (!ctx.fleet || ctx.fleet.state === "ready");
    res.status(ok ? 200 : 503).json({
      status: ok ? "ok" : "degraded",
      signer: ctx.meter.signerAddress,
      signer_authorized: ctx.state.canSettle(),
      draining: options.isDraining?.() ?? false,
      next_sequence: ctx.store.nextSequence().toString(),
      open_reservations: ctx.ledger.openReservations(),
      ...(ctx.fleet && { fleet_store: ctx.fleet.status() }),
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
  app.delete("/v1/sessions/current", routeLabel("sessions.close"), authenticateSession(ctx.store, undefined, ctx.fleetSessions), handle(closeSession(ctx)));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new GatewayError(404, "invalid_request_error", `Unknown request URL: ${req.method} ${req.path}. See the README for the gateway's endpoints.`, "unknown_url"));
  });
  app.use(onError);
  return {
    app,
    listener: (req, res) => {
      if (!plane(req, res)) app(req, res);
    },
  };
}

export { sendGatewayError };
