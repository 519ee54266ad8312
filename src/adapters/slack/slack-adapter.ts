import { App as BoltApp, type RespondFn } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import { tokenize } from '../../core/grammar.js';
import type { ChatIdentity, ChatPort } from '../../core/port.js';
import type { Reply } from '../../core/reply.js';
import { InputError } from '../../core/validate.js';
import type { Logger } from '../../log.js';
import { boltLogger } from './bolt-logger.js';
import { errorMessage } from '../../util/errors.js';
import type { ChatAdapter } from '../adapter.js';
import { toSlackMessage } from './blocks.js';
import { RUN_MODAL_ID, runModal, runWords } from './run-modal.js';
import type { SlackSettings } from './settings.js';

/** `/gpu` in Slack: slash commands, buttons, the launch form and DMs, all onto the core engine. */
export class SlackAdapter implements ChatAdapter {
  readonly name = 'slack';
  private bolt: BoltApp | undefined;

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

    bolt.command('/gpu', async ({ command, ack, respond, client }) => {
      const text = command.text.trim();
      if (/^run$/i.test(text)) {
        // The form needs the trigger id within 3 s: open it before anything slow.
        await ack();
        await client.views.open({ trigger_id: command.trigger_id, view: (await runModal(port, this.identity(client, command.user_id))) as never });
        return;
      }
      await ack();
      await this.answer(port, client, command.user_id, text, respond);
    });

    // Buttons carry the command they run; the clicker's own rights apply (owner or admin).
    bolt.action(/^gpubot_/, async ({ ack, body, action, respond, client }) => {
      await ack();
      const command = (action as { value?: string }).value ?? '';
      await this.answer(port, client, body.user.id, command, respond);
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
      await ack();
      let progressTs: string | undefined;
      const channel = await this.dmChannel(client, body.user.id);
      const reply = await port.handle(this.identity(client, body.user.id), words, async (line) => {
        if (progressTs) await client.chat.update({ channel, ts: progressTs, text: line });
        else progressTs = (await client.chat.postMessage({ channel, text: line })).ts;
      });
      const message = toSlackMessage(reply);
      if (progressTs) await client.chat.update({ channel, ts: progressTs, ...message });
      else await client.chat.postMessage({ channel, ...message });
    });

    bolt.error(async (err) => {
      this.log.error({ err: errorMessage(err) }, 'slack handler failed');
    });

    port.registerNotifier('slack', async (userId, reply) => {
      const channel = await this.dmChannel(bolt.client, userId);
      await bolt.client.chat.postMessage({ channel, ...toSlackMessage(reply) });
    });

    if (s.appToken) await bolt.start();
    else await bolt.start(s.port);
    this.log.info({ mode: s.appToken ? 'socket' : 'http', port: s.appToken ? undefined : s.port }, 'slack adapter started');
  }

  /** Runs a command for a Slack user; progress replaces itself, the answer replaces the progress. */
  private async answer(port: ChatPort, client: WebClient, userId: string, text: string, respond: RespondFn): Promise<void> {
    let progressShown = false;
    // A response_url takes 5 messages: at most 3 progress updates, then the answer.
    let progressLeft = 3;
    const reply: Reply = await port.handle(this.identity(client, userId), text, async (line) => {
      if (progressLeft-- <= 0) return;
      await respond({ response_type: 'ephemeral', replace_original: progressShown, text: `:hourglass_flowing_sand: ${line}` });
      progressShown = true;
    });
    const inChannel = reply.visibility === 'channel';
    await respond({ ...toSlackMessage(reply), response_type: inChannel ? 'in_channel' : 'ephemeral', replace_original: progressShown && !inChannel });
  }

  /** A Slack user; their display name is looked up only the first time gpubot meets them. */
  private identity(client: WebClient, userId: string): ChatIdentity {
    return {
      platform: 'slack',
      id: userId,
      name: async () => {
        const info = await client.users.info({ user: userId });
        const u = info.user;
        return u?.profile?.display_name || u?.real_name || u?.name || userId;
      },
    };
  }

  private async dmChannel(client: WebClient, userId: string): Promise<string> {
    const opened = await client.conversations.open({ users: userId });
    return opened.channel!.id!;
  }

  async stop(): Promise<void> {
    await this.bolt?.stop();
  }
}
