/**
 * Payloads Slack sends to the app: slash commands, button clicks (block_actions), modal
 * submissions and Events API callbacks, each with a fresh response_url / trigger_id where Slack
 * gives one. `teamId` sends it from another workspace (default: the user's `team_id`, else ours).
 */
import { randomBytes } from 'node:crypto';
import type { ResponseUrls } from './response-urls.js';
import { str } from './rules.js';
import type { Json, PayloadTeam, SlackStandin } from './types.js';
import type { Views } from './views.js';
import type { SlackWorkspace } from './workspace.js';

type Builders = Pick<SlackStandin, 'slashCommand' | 'blockAction' | 'viewSubmission' | 'eventCallback'>;

const channelName = (channelId: string): string => (channelId === 'C0GENERAL' ? 'general' : channelId.toLowerCase());

export function payloadBuilders(ws: SlackWorkspace, responseUrls: ResponseUrls, views: Views): Builders {
  const team = (userId: string, o: PayloadTeam): { id: string; domain: string } => {
    const id = o.teamId ?? ws.teamOf(userId);
    return { id, domain: o.teamDomain ?? (id === ws.teamId ? ws.teamDomain : id.toLowerCase()) };
  };

  return {
    slashCommand: ({ userId, userName, text, command = '/gpu', channelId = 'C0GENERAL', channelName: name, ...o }) => {
      ws.ensureUser(userId, userName);
      const { id: responseId, url } = responseUrls.newResponseUrl();
      const triggerId = views.newTriggerId();
      const t = team(userId, o);
      const payload: Json = {
        token: ws.verificationToken,
        team_id: t.id,
        team_domain: t.domain,
        channel_id: channelId,
        channel_name: name ?? (channelId.startsWith('D') ? 'directmessage' : channelName(channelId)),
        user_id: userId,
        user_name: ws.users.get(userId)!.name,
        command,
        text,
        api_app_id: ws.appId,
        is_enterprise_install: 'false',
        response_url: url,
        trigger_id: triggerId,
      };
      return { payload, responseId, triggerId };
    },

    blockAction: ({ userId, userName, actionId, value, blockId, messageTs, channelId = 'C0GENERAL', ephemeral, ...o }) => {
      const { id: responseId, url } = responseUrls.newResponseUrl();
      const triggerId = views.newTriggerId();
      const isEphemeral = ephemeral ?? messageTs === undefined;
      const ts = messageTs ?? ws.nextTs();
      const bId = blockId ?? randomBytes(3).toString('base64url');
      let message: Json | undefined;
      if (!isEphemeral) {
        let m = ws.findMessage(channelId, ts);
        if (!m) {
          m = { channel: ws.dmFor(channelId), ts, fromBot: true, text: '', blocks: [] };
          ws.messages.push(m);
        }
        message = ws.messageOut(m);
      }
      ws.ensureUser(userId, userName);
      const t = team(userId, o);
      const payload: Json = {
        type: 'block_actions',
        user: ws.payloadUser(userId, userName, t.id),
        api_app_id: ws.appId,
        token: ws.verificationToken,
        container: { type: 'message', message_ts: ts, channel_id: ws.dmFor(channelId), is_ephemeral: isEphemeral },
        trigger_id: triggerId,
        team: { id: t.id, domain: t.domain },
        enterprise: null,
        is_enterprise_install: false,
        channel: { id: ws.dmFor(channelId), name: channelId.startsWith('C') ? channelName(channelId) : 'directmessage' },
        ...(message ? { message } : {}),
        state: { values: {} },
        response_url: url,
        actions: [
          {
            action_id: actionId,
            block_id: bId,
            text: { type: 'plain_text', text: value, emoji: true },
            value,
            type: 'button',
            action_ts: `${Math.floor(Date.now() / 1000)}.${String(Date.now() % 1000).padStart(3, '0')}000`,
          },
        ],
      };
      return { payload, responseId, triggerId };
    },

    viewSubmission: ({ userId, userName, callbackId, values, privateMetadata, viewId, ...o }) => {
      const triggerId = views.newTriggerId();
      const opened = viewId ? ws.views.get(viewId) : [...ws.views.values()].reverse().find((v) => v.callback_id === callbackId);
      const base: Json = opened ?? {
        id: ws.nextId('V'),
        team_id: ws.teamId,
        type: 'modal',
        title: { type: 'plain_text', text: 'gpubot', emoji: true },
        submit: { type: 'plain_text', text: 'Submit', emoji: true },
        close: null,
        blocks: [],
        clear_on_close: false,
        notify_on_close: false,
        previous_view_id: null,
        app_id: ws.appId,
        external_id: '',
        app_installed_team_id: ws.teamId,
        bot_id: ws.botId,
        hash: `${Math.floor(Date.now() / 1000)}.${randomBytes(4).toString('hex')}`,
      };
      const view: Json = {
        ...base,
        root_view_id: base.root_view_id ?? base.id,
        callback_id: callbackId,
        private_metadata: privateMetadata ?? str(base.private_metadata) ?? '',
        state: { values },
      };
      ws.ensureUser(userId, userName);
      const t = team(userId, o);
      const payload: Json = {
        type: 'view_submission',
        team: { id: t.id, domain: t.domain },
        user: ws.payloadUser(userId, userName, t.id),
        api_app_id: ws.appId,
        token: ws.verificationToken,
        trigger_id: triggerId,
        view,
        response_urls: [],
        is_enterprise_install: false,
        enterprise: null,
      };
      return { payload, triggerId };
    },

    eventCallback: (event, o = {}) => {
      const now = Math.floor(Date.now() / 1000);
      const teamId = o.teamId ?? ws.teamId;
      return {
        payload: {
          token: ws.verificationToken,
          team_id: teamId,
          context_team_id: teamId,
          context_enterprise_id: null,
          api_app_id: ws.appId,
          event: { event_ts: `${now}.000100`, ...event },
          type: 'event_callback',
          event_id: `Ev${randomBytes(5).toString('hex').toUpperCase()}`,
          event_time: now,
          authorizations: [{ enterprise_id: null, team_id: teamId, user_id: ws.botUserId, is_bot: true, is_enterprise_install: false }],
          is_ext_shared_channel: false,
          event_context: `4-${randomBytes(16).toString('base64url')}`,
        },
      };
    },
  };
}
