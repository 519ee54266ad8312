/** Modals: trigger_ids (once, within 3 s) and views.open / views.push / views.update. */
import { randomBytes } from 'node:crypto';
import { TRIGGER_TTL_MS, apiError, invalidArgs, str, viewProblem } from './rules.js';
import type { Json, StandinView } from './types.js';
import type { SlackWorkspace } from './workspace.js';

export class Views {
  private readonly triggers = new Map<string, { issuedAt: number; used: boolean }>();

  constructor(private readonly ws: SlackWorkspace) {}

  /** A fresh trigger_id, valid once for 3 s. */
  newTriggerId(): string {
    const id = `${Date.now()}.${this.ws.tsBase}.${randomBytes(12).toString('hex')}`;
    this.triggers.set(id, { issuedAt: Date.now(), used: false });
    return id;
  }

  /** Spends a trigger_id; answers the Slack error when it cannot be used. */
  private useTrigger(triggerId: string | undefined): string | undefined {
    if (!triggerId) return 'invalid_arguments';
    const t = this.triggers.get(triggerId);
    if (!t) return 'invalid_trigger_id';
    if (t.used) return 'expired_trigger_id';
    t.used = true;
    if (Date.now() - t.issuedAt > TRIGGER_TTL_MS) {
      this.ws.violation(`trigger_id used ${Date.now() - t.issuedAt} ms after it was issued (Slack allows ${TRIGGER_TTL_MS})`);
      return 'expired_trigger_id';
    }
    return undefined;
  }

  store(view: Json, existing?: StandinView): StandinView {
    const { ws } = this;
    const id = existing?.id ?? ws.nextId('V');
    const out: StandinView = {
      id,
      team_id: ws.teamId,
      type: str(view.type) ?? 'modal',
      title: view.title ?? null,
      submit: view.submit ?? null,
      close: view.close ?? null,
      blocks: view.blocks ?? [],
      private_metadata: str(view.private_metadata) ?? '',
      callback_id: str(view.callback_id) ?? '',
      state: { values: {} },
      hash: `${Math.floor(Date.now() / 1000)}.${randomBytes(4).toString('hex')}`,
      clear_on_close: view.clear_on_close === true || view.clear_on_close === 'true',
      notify_on_close: view.notify_on_close === true || view.notify_on_close === 'true',
      previous_view_id: null,
      root_view_id: existing?.root_view_id ?? id,
      app_id: ws.appId,
      external_id: str(view.external_id) ?? '',
      app_installed_team_id: ws.teamId,
      bot_id: ws.botId,
    };
    ws.views.set(id, out);
    return out;
  }

  /** views.open and views.push. */
  open(a: Json): Json {
    const problem = this.useTrigger(str(a.trigger_id));
    if (problem === 'invalid_arguments') return invalidArgs('missing required field: trigger_id');
    if (problem) return apiError(problem);
    const vp = viewProblem(a.view);
    if (vp) return invalidArgs(vp);
    return { ok: true, view: this.store(a.view as Json) };
  }

  update(a: Json): Json {
    const viewId = str(a.view_id);
    const externalId = str(a.external_id);
    if (!viewId && !externalId) return invalidArgs('either view_id or external_id is required');
    const existing = viewId ? this.ws.views.get(viewId) : [...this.ws.views.values()].find((v) => v.external_id === externalId);
    if (!existing) return apiError('not_found');
    const hash = str(a.hash);
    if (hash && hash !== existing.hash) return apiError('hash_conflict');
    const vp = viewProblem(a.view);
    if (vp) return invalidArgs(vp);
    return { ok: true, view: this.store(a.view as Json, existing) };
  }
}
