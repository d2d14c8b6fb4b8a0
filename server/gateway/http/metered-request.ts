/**
 * What the metered routes (`/v1/chat/completions`, `/v1/embeddings`) see of a request, whichever way it came:
 * the data plane (`http/data-plane.ts`, plain `node:http`, the exact paths) or express (every other spelling of
 * those paths). The handlers write to the plain `ServerResponse` either way, so both ways answer alike.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { ApiKeyRecord } from "../../store/usage-store";

export interface MeteredRequest {
  /** The request id (`x-request-id`), already in the answer's headers. */
  readonly id: string;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body. */
  readonly body: unknown;
  /** The exact bytes the buyer sent: the receipt's request hash is over these. */
  readonly rawBody: Buffer;
  readonly apiKey: ApiKeyRecord;
  /**
   * Headers of the answer decided before it is written (name, value, name, value…, in order; the routing
   * headers), sent with the answer or with an error that comes after them, in one `writeHead`.
   */
  readonly responseHeaders: string[];
}

export type MeteredHandler = (request: MeteredRequest, res: ServerResponse) => Promise<void>;
