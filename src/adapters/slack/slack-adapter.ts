import { App as BoltApp, type RespondFn } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { tokenize } from '../../core/grammar.js';
import type { ChatIdentity, ChatPort } from '../../core/port.js';
import { refuse, type Reply } from '../../core/reply.js';
import { InputError } from '../../core/validate.js';
import type { Logger } from '../../log.js';
import { boltLogger } from './bolt-logger.js';
import { errorMessage } from '../../util/errors.js';
import type { ChatAdapter } from '../adapter.js';
import { escapeText, toSlackMessage } from './blocks.js';
import { RUN_MODAL_ID, runModal, runWords } from './run-modal.js';
import { fieldError, KEY_BLOCK, KEY_MODAL_ID, keyModal, keyWords } from './key-modal.js';
import type { SlackSettings } from './settings.js';
import { slackGuestRefusal, slackTeamRefusal, type SlackAccess } from './access.js';

/** How long what users.info said about someone (guest or not, their name) is trusted. */
const USER_FACTS_TTL_MS = 10 * 60_000;
interface UserFacts {
  guest: boolean;
  name: string;
  at: number;
}

/** `/gpu` in Slack: slash commands, buttons, the launch form and DMs, all onto the core engine. */
export class SlackAdapter implements ChatAdapter {
  readonly name = 'slack';
  private bolt: BoltApp | undefined;
  private access: SlackAccess = { teamIds: [], allowGuests: false };
  private readonly userFacts = new Map<string, UserFacts>();

  constructor(
    private readonly settings: SlackSettings,
    private readonly log: Logger,
  ) {}

  async start(port: ChatPort): Promise<void> {
    const s = this.settings;
    const clientOptions = { slackApiUrl: s.apiUrl, ...(s.retries !== undefined ? { retryConfig: { retries: s.retries } } : {}) };
    const bolt = s.appToken
      ? new BoltApp({ token: s.botToken, appToken: s.appToken, socketMode: true, clientOptions, logger: boltLogger(this.log) })
      : new BoltApp({ token: s.botToken, signingSecret: s.signingSecret!, port: s.port, clientOptions, logger: boltLogger(this.log) });
    this.bolt = bolt;
    // Only our own workspace(s): SLACK_TEAM_ID, or the one the bot token belongs to.
    const teamIds = s.teamIds?.length ? s.teamIds : [String((await bolt.client.auth.test()).team_id ?? '')].filter(Boolean);
    if (!teamIds.length) throw new Error('Slack: could not tell the bot token’s workspace (auth.test gave no team_id); set SLACK_TEAM_ID');
    this.access = { teamIds, allowGuests: port.accessPolicy().slack.allowGuests };

    bolt.command('/gpu', async ({ command, ack, respond, client }) => {
      const text = command.text.trim();
      // Acked at once (Slack's 3 s); the access check may need users.info for someone new.
      await ack();
      const refused = await this.refusal(port, client, command.team_id, command.user_id, `/gpu ${text}`);
      if (refused) {
        await respond({ response_type: 'ephemeral', ...toSlackMessage(refused) });
        return;
      }
      if (/^run$/i.test(text)) {
        // The form needs the trigger id within 3 s of the command: open it before anything slow.
        await client.views.open({ trigger_id: command.trigger_id, view: (await runModal(port, this.identity(client, command.user_id))) as never });
        return;
      }
      if (/^key\s+add$/i.test(text)) {
        await client.views.open({ trigger_id: command.trigger_id, view: keyModal() as never });
        return;
      }
      await this.answer(port, client, command.user_id, text, respond, command.channel_id);
    });

    // Buttons carry the command they run; the clicker's own rights apply (owner or admin).
    bolt.action(/^gpubot_/, async ({ ack, body, action, respond, client }) => {
      await ack();
      const command = (action as { value?: string }).value ?? '';
      const refused = await this.refusal(port, client, body.team?.id ?? body.user.team_id, body.user.id, `button ${command}`);
      if (refused) {
        await respond({ response_type: 'ephemeral', replace_original: false, ...toSlackMessage(refused) });
        return;
      }
      await this.answer(port, client, body.user.id, command, respond, (body as { channel?: { id?: string } }).channel?.id);
    });

    bolt.view(RUN_MODAL_ID, async ({ ack, body, view, client }) => {
      let words: string[];
      try {
        words = runWords(view.state.values as never, tokenize);
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        await ack({ response_action: 'errors', errors: { command: err.message } });
        return;
      }
      const refused = await this.refusal(port, client, body.team?.id ?? body.user.team_id, body.user.id, `run form ${words.join(' ')}`);
      if (refused) {
        await ack({ response_action: 'errors', errors: { command: refused.title } });
        return;
      }
      await ack();
      let progressTs: string | undefined;
      const channel = await this.dmChannel(client, body.user.id);
      const reply = await port.handle(this.identity(client, body.user.id), words, async (line) => {
        if (progressTs) await client.chat.update({ channel, ts: progressTs, text: escapeText(line) });
        else progressTs = (await client.chat.postMessage({ channel, text: escapeText(line) })).ts;
      });
      const message = toSlackMessage(reply);
      if (progressTs) await client.chat.update({ channel, ts: progressTs, ...message });
      else await client.chat.postMessage({ channel, ...message });
      await this.upload(client, channel, reply);
    });

    // Checked before the form closes (key add is quick): a bad key is shown under the field, to fix in place.
    bolt.view(KEY_MODAL_ID, async ({ ack, body, view, client }) => {
      const refused = await this.refusal(port, client, body.team?.id ?? body.user.team_id, body.user.id, 'key form');
      if (refused) {
        await ack({ response_action: 'errors', errors: { [KEY_BLOCK]: fieldError(refused) } });
        return;
      }
      const reply = await port.handle(this.identity(client, body.user.id), keyWords(view.state.values as never));
      if (reply.tone === 'error') {
        await ack({ response_action: 'errors', errors: { [KEY_BLOCK]: fieldError(reply) } });
        return;
      }
      await ack();
      await client.chat.postMessage({ channel: await this.dmChannel(client, body.user.id), ...toSlackMessage(reply) });
    });

    bolt.error(async (err) => {
      this.log.error({ err: errorMessage(err) }, 'slack handler failed');
    });

    port.registerNotifier('slack', async (userId, reply) => {
      const channel = await this.dmChannel(bolt.client, userId);
      await bolt.client.chat.postMessage({ channel, ...toSlackMessage(reply) });
      await this.upload(bolt.client, channel, reply);
    });

    if (s.appToken) await bolt.start();
    else await bolt.start(s.port);
    this.log.info({ mode: s.appToken ? 'socket' : 'http', port: s.appToken ? undefined : s.port }, 'slack adapter started');
  }

  /** Runs a command for a Slack user; progress replaces itself, the answer replaces the progress. */
  private async answer(port: ChatPort, client: WebClient, userId: string, text: string, respond: RespondFn, channelId?: string): Promise<void> {
    let progressShown = false;
    // A response_url takes 5 messages: at most 3 progress updates, then the answer.
    let progressLeft = 3;
    const reply: Reply = await port.handle(this.identity(client, userId), text, async (line) => {
      if (progressLeft-- <= 0) return;
      await respond({ response_type: 'ephemeral', replace_original: progressShown, text: `:hourglass_flowing_sand: ${escapeText(line)}` });
      progressShown = true;
    });
    const inChannel = reply.visibility === 'channel';
    await respond({ ...toSlackMessage(reply), response_type: inChannel ? 'in_channel' : 'ephemeral', replace_original: progressShown && !inChannel });
    if (reply.image) await this.upload(client, inChannel && channelId ? channelId : await this.dmChannel(client, userId), reply);
  }

  /**
   * A reply's chart, through Slack's current upload API (files.getUploadURLExternal, the bytes,
   * files.completeUploadExternal). A failed upload leaves the text answer standing.
   */
  private async upload(client: WebClient, channel: string, reply: Reply): Promise<void> {
    if (!reply.image) return;
    const { png, filename, alt } = reply.image;
    try {
      await client.filesUploadV2({ channel_id: channel, file: Buffer.from(png), filename, title: reply.title, alt_text: alt.slice(0, 1000) });
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not upload a chart to Slack');
    }
  }

  /** A Slack user; their display name is looked up only the first time gpubot meets them. */
  private identity(client: WebClient, userId: string): ChatIdentity {
    return { platform: 'slack', id: userId, name: async () => (await this.factsAbout(client, userId)).name };
  }

  /** users.info, cached for a while: whether the person is a guest, and their name. */
  private async factsAbout(client: WebClient, userId: string): Promise<UserFacts> {
    const known = this.userFacts.get(userId);
    if (known && Date.now() - known.at < USER_FACTS_TTL_MS) return known;
    const u = (await client.users.info({ user: userId })).user;
    const facts = { guest: Boolean(u?.is_restricted || u?.is_ultra_restricted), name: u?.profile?.display_name || u?.real_name || u?.name || userId, at: Date.now() };
    if (this.userFacts.size > 10_000) this.userFacts.clear();
    this.userFacts.set(userId, facts);
    return facts;
  }

  /**
   * Only our workspace(s), and no guests unless slack.allowGuests: null when allowed, else the
   * refusal to show. It is audited and nothing else happens (not even a gpubot user made for them).
   */
  private async refusal(port: ChatPort, client: WebClient, teamId: string | undefined, userId: string, what: string): Promise<Reply | null> {
    const refusal = slackTeamRefusal(this.access, teamId) ?? (this.access.allowGuests ? null : slackGuestRefusal(this.access, await this.factsAbout(client, userId)));
    if (!refusal) return null;
    port.refusedAtTheDoor({ platform: 'slack', id: userId }, `${refusal.reason}: ${what}`);
    return refuse('not-allowed', refusal.title, refusal.detail);
  }

  private async dmChannel(client: WebClient, userId: string): Promise<string> {
    const opened = await client.conversations.open({ users: userId });
    return opened.channel!.id!;
  }

  async stop(): Promise<void> {
    await this.bolt?.stop();
  }
}
