/** What every REST route handler gets and gives back. */
import type { MultipartFile, Router } from '../standin-http.js';
import type { InteractionState } from './interactions.js';
import type { Json } from './types.js';

export interface RouteContext {
  method: string;
  /** URL-decoded path segments after /api/v10. */
  seg: string[];
  query: Record<string, string>;
  /** The JSON body or payload_json; {} when there is none. */
  body: Json;
  files: MultipartFile[];
  authorization: string | undefined;
  /** Set by guards for the routes after them. */
  interaction?: InteractionState;
  message?: Json;
  /** The message a route created or edited (for the `sent` record). */
  messageId?: string;
}

export interface RouteResult {
  status: number;
  body?: unknown;
}

export type RestRouter = Router<RouteContext, RouteResult>;

export const ok = (status: number, body?: unknown): RouteResult => ({ status, body });
