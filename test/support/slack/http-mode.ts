/**
 * HTTP mode: Slack's side of a request to Bolt's HTTPReceiver: the body (form fields for slash
 * commands, `payload=<json>` for interactive payloads), the v0 signature, and the POST itself with
 * its latency measured against the 3 s deadline.
 */
import { createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { ACK_DEADLINE_MS } from './rules.js';
import type { SlackStandin } from './types.js';
import type { SlackWorkspace } from './workspace.js';

type HttpMode = Pick<SlackStandin, 'postToReceiver' | 'formBody' | 'sign'>;

export function httpMode(ws: SlackWorkspace): HttpMode {
  const sign = (body: string, timestampSec: number, secret = ws.signingSecret): string =>
    `v0=${createHmac('sha256', secret).update(`v0:${timestampSec}:${body}`).digest('hex')}`;

  return {
    sign,

    formBody: (payload) => {
      if (payload.command !== undefined) {
        const form = new URLSearchParams();
        for (const [k, v] of Object.entries(payload)) if (v !== undefined && v !== null) form.append(k, typeof v === 'string' ? v : JSON.stringify(v));
        return form.toString();
      }
      return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    },

    postToReceiver: (url, body, o = {}) => {
      const signature = o.signature ?? 'valid';
      const ts = Math.floor(Date.now() / 1000) + (o.timestampSkewSec ?? 0);
      const contentType = o.contentType ?? (body.trimStart().startsWith('{') ? 'application/json' : 'application/x-www-form-urlencoded');
      const headers: Record<string, string | number> = {
        'content-type': contentType,
        'content-length': Buffer.byteLength(body),
        'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
        accept: 'application/json,*/*',
        connection: 'close',
      };
      if (signature !== 'none') {
        headers['x-slack-request-timestamp'] = String(ts);
        headers['x-slack-signature'] = signature === 'valid' ? sign(body, ts) : sign(body, ts, `${ws.signingSecret}-wrong`);
      }
      const started = Date.now();
      return new Promise((resolve, reject) => {
        const req = httpRequest(url, { method: 'POST', headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const ms = Date.now() - started;
            if (signature === 'valid' && (o.timestampSkewSec ?? 0) === 0) {
              ws.latencies.push(ms);
              if (ms > ACK_DEADLINE_MS) {
                ws.late += 1;
                ws.violation(`HTTP request to ${url} answered after ${ms} ms (Slack gives up after ${ACK_DEADLINE_MS})`);
              }
            }
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    },
  };
}
