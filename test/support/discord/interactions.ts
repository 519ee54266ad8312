/**
 * Interactions: INTERACTION_CREATE out, the callback back in (within 3 s, once, of a type that fits
 * the interaction, with valid data), and the interaction webhook (follow-ups, edits, fetch, delete
 * of @original) that works only after the callback, with the right application id, for 15 minutes.
 */
import { randomBytes } from 'node:crypto';
import type { MultipartFile } from '../standin-http.js';
import type { DiscordGuild } from './guild.js';
import { callbackProblems, hasAny } from './message-rules.js';
import type { MessageStore } from './messages.js';
import { ACK_DEADLINE_MS, EPHEMERAL, HttpError, LOADING, TOKEN_TTL_MS, clone, describeProblems, formError, isObj, notFound } from './protocol.js';
import type { CallbackResult, DispatchedInteraction, Json } from './types.js';

export interface InteractionState {
  id: string;
  token: string;
  type: number;
  payload: Json;
  label: string;
  dispatchedAt: number;
  acked?: { type: number; at: number };
  /** Message id of @original: the reply, or for components the message the component is on. */
  originalId?: string;
  followUps: string[];
  expired: boolean;
  flagged: boolean;
  settled: boolean;
  resolve: (r: CallbackResult) => void;
  reject: (e: Error) => void;
  deadline: NodeJS.Timeout;
  giveUp: NodeJS.Timeout;
}

/** Callback types Discord accepts per interaction type (2 command, 3 component, 4 autocomplete, 5 modal submit). */
const CALLBACK_TYPES: Record<number, number[]> = {
  2: [4, 5, 9, 12],
  3: [4, 5, 6, 7, 9, 12],
  4: [8],
  5: [4, 5, 6, 7],
};

/** "/gpu admin quota", "component gpubot:stop x", … for violation lines. */
function interactionLabel(p: Json): string {
  const d = isObj(p.data) ? p.data : {};
  if (p.type === 2 || p.type === 4) {
    const parts = [`/${String(d.name)}`];
    let opts = d.options as Json[] | undefined;
    while (opts?.[0] && (opts[0].type === 1 || opts[0].type === 2)) {
      parts.push(String(opts[0].name));
      opts = opts[0].options as Json[] | undefined;
    }
    return `${p.type === 4 ? 'autocomplete ' : ''}${parts.join(' ')}`;
  }
  if (p.type === 3) return `component ${String(d.custom_id)}`;
  if (p.type === 5) return `modal ${String(d.custom_id)}`;
  return `interaction type ${String(p.type)}`;
}

export class Interactions {
  readonly byId = new Map<string, InteractionState>();
  readonly byToken = new Map<string, InteractionState>();
  /** custom_id → the last modal the bot opened with it. */
  readonly modals = new Map<string, Json>();

  constructor(
    private readonly g: DiscordGuild,
    private readonly store: MessageStore,
    private readonly gateway: { dispatch(t: string, d: Json): void; hasSession(): boolean },
  ) {}

  dispatch(payload: object, o: { waitMs?: number } = {}): DispatchedInteraction {
    if (!this.gateway.hasSession()) throw new Error('no gateway session: has the client logged in?');
    const p = clone(payload) as Json;
    p.id ??= this.g.snowflake();
    p.token ??= `aW50ZXJhY3Rpb246${p.id}${randomBytes(48).toString('base64url')}`;
    const id = String(p.id);
    const tok = String(p.token);
    let resolve!: (r: CallbackResult) => void;
    let reject!: (e: Error) => void;
    const callback = new Promise<CallbackResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    callback.catch(() => undefined); // a handle nobody awaits must not become an unhandled rejection
    const label = interactionLabel(p);
    const waitMs = o.waitMs ?? 5000;
    const st: InteractionState = {
      id,
      token: tok,
      type: Number(p.type),
      payload: p,
      label,
      dispatchedAt: Date.now(),
      followUps: [],
      expired: false,
      flagged: false,
      settled: false,
      resolve,
      reject,
      deadline: setTimeout(() => {
        if (!st.acked) {
          st.flagged = true;
          this.g.violation(`interaction ${id} (${label}) was not acknowledged within ${ACK_DEADLINE_MS} ms`);
        }
      }, ACK_DEADLINE_MS),
      giveUp: setTimeout(() => {
        if (!st.settled) {
          st.settled = true;
          reject(new Error(`no callback for interaction ${id} (${label}) within ${waitMs} ms`));
        }
      }, waitMs),
    };
    // The message a component was clicked on is the interaction's @original until it replies.
    if (p.type === 3 && isObj(p.message)) {
      st.originalId = String(p.message.id);
      if (!this.g.messages.has(st.originalId)) this.g.messages.set(st.originalId, clone(p.message));
    }
    if (p.type === 5 && isObj(p.message)) st.originalId = String(p.message.id);
    this.byId.set(id, st);
    this.byToken.set(tok, st);
    this.gateway.dispatch('INTERACTION_CREATE', p);
    return { id, token: tok, callback };
  }

  originalOf(tokenValue: string): Json | undefined {
    const st = this.byToken.get(tokenValue);
    return st?.originalId ? this.g.messages.get(st.originalId) : undefined;
  }

  private settle(st: InteractionState, r: CallbackResult): void {
    if (st.settled) return;
    st.settled = true;
    clearTimeout(st.giveUp);
    this.g.whenRecorded(() => st.resolve(r));
  }

  /** POST /interactions/:id/:token/callback. */
  callback(id: string, tok: string, query: Record<string, string>, body: Json, files: MultipartFile[]): { status: number; body?: Json } {
    const { g } = this;
    const st = this.byId.get(id);
    const type = Number(body?.type);
    const data = isObj(body?.data) ? body.data : undefined;
    if (!st || st.token !== tok) {
      g.violation(`callback for an unknown interaction ${id}`);
      throw new HttpError(404, { message: 'Unknown interaction', code: 10062 });
    }
    const ms = Date.now() - st.dispatchedAt;
    const record = (status: number, error?: Json): void => {
      const r: CallbackResult = { type, ...(data !== undefined ? { data: clone(data) } : {}), ms, status, ...(error ? { error } : {}) };
      g.callbacks.push({ interactionId: id, token: tok, ...r });
      this.settle(st, r);
    };
    const fail = (status: number, err: Json, v?: string): never => {
      if (v) g.violation(v);
      record(status, err);
      throw new HttpError(status, err);
    };
    if (st.acked) fail(400, { message: 'Interaction has already been acknowledged.', code: 40060 }, `interaction ${id} (${st.label}) acknowledged twice (callback type ${type} after ${st.acked.type})`);
    if (ms > ACK_DEADLINE_MS) {
      const v = st.flagged ? undefined : `interaction ${id} (${st.label}) answered after ${ms} ms (more than ${ACK_DEADLINE_MS} ms)`;
      st.flagged = true;
      fail(404, { message: 'Unknown interaction', code: 10062 }, v);
    }
    const allowed = CALLBACK_TYPES[st.type] ?? [];
    if (!allowed.includes(type))
      fail(400, formError([{ path: 'type', code: 'INTERACTION_RESPONSE_TYPE_INVALID', message: `Interaction response type ${type} is not valid for interaction type ${st.type}` }]), `interaction ${id} (${st.label}): callback type ${type} is not allowed for interaction type ${st.type}`);
    if (st.type === 5 && (type === 6 || type === 7) && !st.originalId)
      fail(400, formError([{ path: 'type', code: 'INTERACTION_RESPONSE_TYPE_INVALID', message: 'This modal was not opened from a message' }]), `interaction ${id} (${st.label}): update of a modal that was not opened from a message`);

    const problems = callbackProblems(type, data);
    if (!problems.length && (type === 4 || type === 7)) {
      const after = type === 7 && st.originalId ? { ...g.messages.get(st.originalId), ...data } : { ...data, attachments: files };
      if (!hasAny(after) && !files.length) fail(400, { message: 'Cannot send an empty message', code: 50006 }, `interaction ${id} (${st.label}): empty message in callback type ${type}`);
    }
    if (problems.length) fail(400, formError(problems), `interaction ${id} (${st.label}): invalid callback type ${type}: ${describeProblems(problems)}`);

    const msg = this.apply(st, type, data, files);
    st.acked = { type, at: Date.now() };
    clearTimeout(st.deadline);
    record(query.with_response === 'true' ? 200 : 204);
    this.store.changed();
    if (query.with_response !== 'true') return { status: 204 };
    return {
      status: 200,
      body: {
        interaction: {
          id,
          type: st.type,
          activity_instance_id: null,
          response_message_id: msg?.id ?? null,
          response_message_loading: msg ? Boolean(msg.flags & LOADING) : null,
          response_message_ephemeral: msg ? Boolean(msg.flags & EPHEMERAL) : null,
        },
        resource: { type, ...(msg && (type === 4 || type === 7) ? { message: clone(msg) } : {}) },
      },
    };
  }

  /** What an accepted callback does to the stored messages; the message it made or touched. */
  private apply(st: InteractionState, type: number, data: Json | undefined, files: MultipartFile[]): Json | undefined {
    const isCommand = st.type === 2;
    const meta = {
      webhook_id: this.g.appId,
      application_id: this.g.appId,
      interaction_metadata: {
        id: st.id,
        type: st.type,
        user: st.payload.member?.user ?? st.payload.user,
        authorizing_integration_owners: st.payload.authorizing_integration_owners ?? {},
        ...(isCommand ? { name: st.payload.data?.name, command_type: st.payload.data?.type ?? 1 } : {}),
      },
    };
    const channel = this.channelOf(st);
    if (type === 4) {
      const msg = this.store.create(channel, data ?? {}, { ...meta, type: isCommand ? 20 : 19 });
      this.store.addFiles(msg, files, data ?? {});
      st.originalId = msg.id;
      return msg;
    }
    if (type === 5) {
      const msg = this.store.create(channel, { content: '', flags: Number(data?.flags ?? 0) & EPHEMERAL }, { ...meta, type: isCommand ? 20 : 19 });
      msg.flags |= LOADING;
      st.originalId = msg.id;
      return msg;
    }
    if (type === 7 && st.originalId) {
      const msg = this.g.messages.get(st.originalId);
      if (msg) this.store.edit(msg, data ?? {}, files);
      return msg;
    }
    if (type === 6 && st.originalId) return this.g.messages.get(st.originalId);
    if (type === 9 && data) this.modals.set(String(data.custom_id), clone(data));
    return undefined;
  }

  channelOf(st: InteractionState): string {
    return String(st.payload.channel?.id ?? st.payload.channel_id);
  }

  /** The interaction behind /webhooks/:app/:token, if its webhook may be used now. */
  webhookState(app: string, tok: string): InteractionState {
    const { g } = this;
    const st = this.byToken.get(tok);
    if (!st) {
      g.violation(`interaction webhook used with an unknown token`);
      throw notFound('Webhook', 10015);
    }
    if (app !== g.appId || app !== String(st.payload.application_id)) {
      g.violation(`interaction webhook for ${st.label} used with application id ${app} (expected ${g.appId})`);
      throw notFound('Webhook', 10015);
    }
    if (st.expired || Date.now() - st.dispatchedAt > TOKEN_TTL_MS) {
      g.violation(`interaction webhook for ${st.label} used after its token expired`);
      throw new HttpError(401, { message: 'Invalid Webhook Token', code: 50027 });
    }
    if (!st.acked) {
      g.violation(`interaction webhook for ${st.label} used before the interaction was acknowledged`);
      throw notFound('Webhook', 10015);
    }
    if (st.acked.type === 8) {
      g.violation(`interaction webhook used for an autocomplete interaction (${st.label})`);
      throw notFound('Webhook', 10015);
    }
    return st;
  }

  /** @original or a follow-up of this interaction. */
  webhookMessage(st: InteractionState, mid: string): Json {
    const id = mid === '@original' ? st.originalId : st.followUps.includes(mid) || mid === st.originalId ? mid : undefined;
    const m = id ? this.g.messages.get(id) : undefined;
    if (!m) throw notFound('Message', 10008);
    return m;
  }

  /** Stops every interaction's timers (at close). */
  stop(): void {
    for (const st of this.byId.values()) {
      clearTimeout(st.deadline);
      clearTimeout(st.giveUp);
    }
  }
}
