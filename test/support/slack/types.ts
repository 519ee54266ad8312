/** The Slack stand-in's public types (re-exported by test/support/slack-standin.ts). */
export type Json = Record<string, unknown>;

export interface ApiCall {
  method: string;
  /** Parsed arguments without `token`. Form values stay strings (as Slack receives them), except
   *  JSON-typed arguments (blocks, attachments, view, metadata, files, …) which are decoded. */
  args: Json;
  token?: string;
  /** What the stand-in answered. */
  response: Json;
  at: number;
}

export interface ResponseRecord {
  id: string;
  body: Json;
  at: number;
}

export interface StandinUser {
  name: string;
  display_name?: string;
  real_name?: string;
  /** The user's own workspace as users.info reports it (default: the stand-in's team); also the
   *  default `team_id` of payloads this user sends. */
  team_id?: string;
  /** A multi-channel guest (users.info `is_restricted`). */
  is_restricted?: boolean;
  /** A single-channel guest (users.info `is_ultra_restricted`; Slack sets `is_restricted` too). */
  is_ultra_restricted?: boolean;
  is_admin?: boolean;
  is_owner?: boolean;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: unknown;
  thread_ts?: string;
  /** true for messages the bot posted (only those can be updated/deleted). */
  fromBot: boolean;
  deleted?: boolean;
  /** Files shared with this message by files.completeUploadExternal. */
  files?: { id: string; name: string; title: string }[];
}

export interface StandinView extends Json {
  id: string;
  callback_id: string;
  private_metadata: string;
  hash: string;
}

/** One file of the upload v2 flow: files.getUploadURLExternal → POST upload_url → files.completeUploadExternal. */
export interface SlackUpload {
  fileId: string;
  filename: string;
  /** `length` declared to files.getUploadURLExternal. */
  length: number;
  altText?: string;
  /** The bytes POSTed to the upload URL (undefined until then). */
  data?: Buffer;
  /** Content-Type of the upload POST (a multipart upload records the file part's type). */
  contentType?: string;
  /** Set by files.completeUploadExternal. */
  completed: boolean;
  title?: string;
  channelId?: string;
  threadTs?: string;
  initialComment?: string;
  /** ts of the channel message that shares the file (with channel_id). */
  messageTs?: string;
}

/** Who sends a payload: `teamId` defaults to the user's `team_id`, else the stand-in's team. */
export interface PayloadTeam {
  teamId?: string;
  teamDomain?: string;
}

export interface SlackStandin {
  /** "http://127.0.0.1:PORT/api/" — pass as Bolt `clientOptions.slackApiUrl` (web-api adds a missing trailing slash itself). */
  apiUrl: string;
  /** "http://127.0.0.1:PORT" */
  baseUrl: string;
  botToken: string;
  appToken: string;
  signingSecret: string;
  /** Legacy verification token Slack puts into payloads (`token` field). */
  verificationToken: string;
  teamId: string;
  teamDomain: string;
  appId: string;
  botUserId: string;
  botId: string;

  /** Every Web API call made (including rejected and unknown ones), in order. */
  calls: ApiCall[];
  callsTo(method: string): Json[];
  /** Resolves with the first call (already made or future) matching; rejects after timeoutMs (default 5000). */
  waitForCall(method: string, predicate?: (args: Json) => boolean, timeoutMs?: number): Promise<Json>;
  /** Make the next `times` calls of `method` answer `{ok:false, error}`. */
  failNext(method: string, error: string, times?: number): void;

  /** Messages accepted by response_urls, in order. */
  responses: ResponseRecord[];
  waitForResponse(id: string, predicate?: (body: Json) => boolean, timeoutMs?: number): Promise<Json>;
  newResponseUrl(): { id: string; url: string };
  /** A fresh trigger_id, valid once for 3 s (views.open / views.push). */
  newTriggerId(): string;

  /** Files of the upload v2 flow, in the order their upload URLs were handed out. */
  uploads: SlackUpload[];
  /** Resolves with the first completed upload (made or future) matching; rejects after timeoutMs (default 5000). */
  waitForUpload(predicate?: (u: SlackUpload) => boolean, timeoutMs?: number): Promise<SlackUpload>;

  /** Resolves once a socket-mode client is connected and has been sent "hello" (default timeout 15 s). */
  waitForSocket(timeoutMs?: number): Promise<void>;
  /** Total WebSocket connections accepted so far (reconnects included). */
  socketConnections(): number;
  /** Currently open WebSocket connections. */
  openSockets(): number;
  /** Sends an envelope on the newest connection; resolves with the ack (Bolt always acks with a
   *  `payload` object, `{}` when ack() got no argument). Rejects (and records a violation) if no
   *  ack arrives within 3000 ms. */
  sendEnvelope(type: 'slash_commands' | 'interactive' | 'events_api', payload: Json, opts?: { retryAttempt?: number; retryReason?: string }): Promise<{ ackMs: number; payload?: unknown; envelopeId: string }>;
  /** Sends {"type":"disconnect","reason":…} to every open connection and resolves when they are
   *  closed (the client closes them itself; stragglers are terminated after graceMs, default 10 s). */
  sendDisconnect(reason?: string, graceMs?: number): Promise<void>;

  slashCommand(opts: { userId: string; userName?: string; text: string; command?: string; channelId?: string; channelName?: string } & PayloadTeam): { payload: Json; responseId: string; triggerId: string };
  /** A button click. With `messageTs` the button sits on a normal bot message (registered so chat.update works);
   *  without it (or with `ephemeral: true`) on an ephemeral message, as after `respond()`. */
  blockAction(opts: { userId: string; userName?: string; actionId: string; value: string; blockId?: string; messageTs?: string; channelId?: string; ephemeral?: boolean } & PayloadTeam): { payload: Json; responseId: string; triggerId: string };
  /** A modal submission. If a view with this callback_id was opened through views.open/push, its id, blocks and title are used. */
  viewSubmission(opts: { userId: string; userName?: string; callbackId: string; values: Record<string, Record<string, unknown>>; privateMetadata?: string; viewId?: string } & PayloadTeam): { payload: Json; triggerId: string };
  /** An Events API `event_callback` wrapper around `event` (send with type 'events_api'). */
  eventCallback(event: Json, opts?: { teamId?: string }): { payload: Json };

  /** HTTP mode: POST to Bolt's receiver, signed ('valid', default), with a wrong secret ('bad') or unsigned ('none').
   *  timestampSkewSec shifts X-Slack-Request-Timestamp (−360 = six minutes old). */
  postToReceiver(url: string, body: string, opts?: { contentType?: string; signature?: 'valid' | 'bad' | 'none'; timestampSkewSec?: number }): Promise<{ status: number; body: string; ms: number }>;
  /** Slash command payloads → form fields; interactive payloads → `payload=<json>`. */
  formBody(payload: Json): string;
  sign(body: string, timestampSec: number, secret?: string): string;

  ackLatencies(): number[];
  lateAcks(): number;
  violations: string[];

  users: Map<string, StandinUser>;
  messages: StoredMessage[];
  views: Map<string, StandinView>;

  /** Empties calls, responses, latencies and violations (not users, messages, views or uploads). */
  clearRecords(): void;
  close(): Promise<void>;
}

export interface StandinOptions {
  users?: Record<string, StandinUser>;
  /** How often the server pings each socket (like Slack). Default 10 000 ms; 0 disables. */
  pingIntervalMs?: number;
  /** Max messages per response_url (Slack: 5). */
  responseUrlMaxUses?: number;
}
