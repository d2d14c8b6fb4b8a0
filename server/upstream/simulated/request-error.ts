/** Errors the simulated upstream answers with, in OpenAI's error shape. */

export interface ErrorBody {
  status: number;
  message: string;
  type: string;
  param?: string | null;
  code?: string | null;
  headers?: Record<string, string>;
}

export class RequestError extends Error {
  constructor(readonly body: ErrorBody) {
    super(body.message);
  }
}

export function invalid(message: string, param: string | null = null, code: string | null = null): RequestError {
  return new RequestError({ status: 400, message, type: "invalid_request_error", param, code });
}
