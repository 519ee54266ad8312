/**
 * response_urls, POST /response/<id>: at most `maxUses` (Slack: 5) JSON messages within 30 minutes;
 * each needs text, blocks or attachments unless it deletes the original; blocks within limits.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Waiters, readBody, sendJson } from '../standin-http.js';
import { RESPONSE_URL_TTL_MS, apiError, blocksProblem, isObj, str } from './rules.js';
import type { ResponseRecord } from './types.js';
import type { SlackWorkspace } from './workspace.js';

export const RESPONSE_PATH = '/response/';

export class ResponseUrls {
  readonly responseWaiters = new Waiters<ResponseRecord>();
  private readonly issued = new Map<string, { issuedAt: number; uses: number }>();

  constructor(
    private readonly ws: SlackWorkspace,
    private readonly maxUses: number,
  ) {}

  newResponseUrl(): { id: string; url: string } {
    const id = `${this.ws.nextId('R')}${randomBytes(6).toString('hex')}`;
    this.issued.set(id, { issuedAt: Date.now(), uses: 0 });
    return { id, url: `${this.ws.baseUrl}${RESPONSE_PATH}${id}` };
  }

  async handle(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const refuse = (status: number, error: string, violation: string): void => {
      this.ws.violation(violation);
      sendJson(res, status, apiError(error));
    };
    const entry = this.issued.get(id);
    if (!entry) return refuse(404, 'no_active_hooks', `POST to unknown response_url ${id}`);
    if (Date.now() - entry.issuedAt > RESPONSE_URL_TTL_MS) return refuse(404, 'expired_url', `response_url ${id} used after 30 minutes`);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return refuse(400, 'invalid_payload', `response_url ${id}: body is not JSON: ${raw.slice(0, 200)}`);
    }
    if (!isObj(body)) return refuse(400, 'invalid_payload', `response_url ${id}: body is not a JSON object`);
    if (entry.uses >= this.maxUses) return refuse(404, 'used_url', `response_url ${id} used more than ${this.maxUses} times`);
    const deleting = body.delete_original === true || body.delete_original === 'true';
    if (!deleting && !str(body.text) && body.blocks === undefined && body.attachments === undefined) return refuse(400, 'no_text', `response_url ${id}: message without text, blocks or attachments`);
    const bp = blocksProblem(body.blocks, 50);
    if (bp) return refuse(400, 'invalid_blocks', `response_url ${id}: invalid_blocks: ${bp}`);
    entry.uses += 1;
    const rec: ResponseRecord = { id, body, at: Date.now() };
    this.ws.responses.push(rec);
    this.responseWaiters.notify(rec);
    sendJson(res, 200, { ok: true });
  }
}
