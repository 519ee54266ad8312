/**
 * The stand-in's HTTP routes and WebSocket door:
 *   POST /api/<method>        the Web API (web-api.ts)
 *   POST /response/<id>       response_urls (response-urls.ts)
 *   POST /upload/v1/<file_id> upload v2 URLs (files.ts)
 *   GET  /socket?ticket=…     Socket Mode (socket-mode.ts); other upgrades answer 401
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, type UpgradeHandler } from '../standin-http.js';
import { UPLOAD_PATH, type Files } from './files.js';
import { RESPONSE_PATH, type ResponseUrls } from './response-urls.js';
import { apiError } from './rules.js';
import type { SocketMode } from './socket-mode.js';
import type { WebApi } from './web-api.js';
import type { SlackWorkspace } from './workspace.js';

const API_PATH = '/api/';

export interface SlackParts {
  ws: SlackWorkspace;
  webApi: WebApi;
  responseUrls: ResponseUrls;
  files: Files;
  socketMode: SocketMode;
}

export function routeRequest(parts: () => SlackParts): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const { ws, webApi, responseUrls, files } = parts();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const fail = (e: unknown): void => {
      ws.violation(`stand-in error on ${req.method} ${path}: ${String(e)}`);
      if (!res.headersSent) sendJson(res, 500, apiError('internal_error'));
    };
    if (path.startsWith(API_PATH) && path.length > API_PATH.length) {
      webApi.handle(req, res, path.slice(API_PATH.length), url.searchParams).catch(fail);
    } else if (path.startsWith(RESPONSE_PATH) && req.method === 'POST') {
      responseUrls.handle(req, res, decodeURIComponent(path.slice(RESPONSE_PATH.length))).catch(fail);
    } else if (path.startsWith(UPLOAD_PATH) && req.method === 'POST') {
      files.receive(req, res, decodeURIComponent(path.slice(UPLOAD_PATH.length))).catch(fail);
    } else {
      sendJson(res, 404, apiError('not_found'));
    }
  };
}

export function routeUpgrade(parts: () => SlackParts): UpgradeHandler {
  return (_req, url, upgrade) => {
    const { socketMode } = parts();
    if (!socketMode.admits(url)) return upgrade.refuse(401, 'Unauthorized');
    void upgrade.accept().then((sock) => socketMode.onConnection(sock));
  };
}
