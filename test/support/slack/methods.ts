/**
 * The Web API methods the stand-in answers (token already checked): auth.test, users.info,
 * conversations.open, chat.postMessage/postEphemeral/update/delete, views.*, files.* (upload v2).
 * Anything else answers `unknown_method`.
 */
import type { Files } from './files.js';
import { MAX_TEXT_LENGTH, apiError, blocksProblem, str } from './rules.js';
import type { Json, StoredMessage } from './types.js';
import type { Views } from './views.js';
import type { SlackWorkspace } from './workspace.js';

const invalidBlocks = (problem: string): Json => apiError('invalid_blocks', { response_metadata: { messages: [`[ERROR] ${problem}`] } });

export function answerMethod(ws: SlackWorkspace, views: Views, files: Files, method: string, a: Json): Json {
  switch (method) {
    case 'auth.test':
      return { ok: true, url: `https://${ws.teamDomain}.slack.com/`, team: ws.teamDomain, user: 'gpubot', team_id: ws.teamId, user_id: ws.botUserId, bot_id: ws.botId, is_enterprise_install: false };
    case 'users.info': {
      const id = str(a.user);
      if (!id) return apiError('user_not_found');
      const u = ws.userOut(id);
      return u ? { ok: true, user: u } : apiError('user_not_found');
    }
    case 'conversations.open':
      return conversationsOpen(ws, a);
    case 'chat.postMessage':
    case 'chat.postEphemeral':
      return post(ws, method, a);
    case 'chat.update':
      return update(ws, a);
    case 'chat.delete': {
      const channel = str(a.channel);
      const ts = str(a.ts);
      if (!channel) return apiError('channel_not_found');
      const m = ts ? ws.findMessage(channel, ts) : undefined;
      if (!m) return apiError('message_not_found');
      if (!m.fromBot) return apiError('cant_delete_message');
      m.deleted = true;
      return { ok: true, channel: m.channel, ts: m.ts };
    }
    case 'views.open':
    case 'views.push':
      return views.open(a);
    case 'views.update':
      return views.update(a);
    case 'files.getUploadURLExternal':
      return files.getUploadUrl(a);
    case 'files.completeUploadExternal':
      return files.complete(a);
    default:
      return apiError('unknown_method');
  }
}

function conversationsOpen(ws: SlackWorkspace, a: Json): Json {
  const channel = str(a.channel);
  if (channel) return { ok: true, no_op: true, already_open: true, channel: { id: channel } };
  const ids = (str(a.users) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (ids.length === 0) return apiError('users_list_not_supplied');
  for (const id of ids) if (!ws.userOut(id)) return apiError('user_not_found');
  const id = ids.length === 1 ? `D${ids[0]!}` : `G${ids.join('')}`;
  return { ok: true, no_op: true, already_open: true, channel: { id } };
}

function post(ws: SlackWorkspace, method: string, a: Json): Json {
  const channel = str(a.channel);
  if (!channel) return apiError('channel_not_found');
  const text = str(a.text);
  if (!text && a.blocks === undefined && a.attachments === undefined) return apiError('no_text');
  if (text && text.length > MAX_TEXT_LENGTH) return apiError('msg_too_long');
  const bp = blocksProblem(a.blocks, 50);
  if (bp) return invalidBlocks(bp);
  if (method === 'chat.postEphemeral') {
    const user = str(a.user);
    if (!user) return apiError('user_not_in_channel');
    // Ephemeral messages are not stored: they cannot be updated or deleted through the Web API.
    return { ok: true, message_ts: ws.nextTs() };
  }
  const m: StoredMessage = {
    channel: ws.dmFor(channel),
    ts: ws.nextTs(),
    fromBot: true,
    ...(text !== undefined ? { text } : {}),
    ...(a.blocks !== undefined ? { blocks: a.blocks } : {}),
    ...(str(a.thread_ts) ? { thread_ts: str(a.thread_ts)! } : {}),
  };
  ws.messages.push(m);
  return { ok: true, channel: m.channel, ts: m.ts, message: ws.messageOut(m) };
}

function update(ws: SlackWorkspace, a: Json): Json {
  const channel = str(a.channel);
  const ts = str(a.ts);
  if (!channel) return apiError('channel_not_found');
  if (!ts) return apiError('message_not_found');
  const m = ws.findMessage(channel, ts);
  if (!m) return apiError('message_not_found');
  if (!m.fromBot) return apiError('cant_update_message');
  const text = str(a.text);
  if (text && text.length > MAX_TEXT_LENGTH) return apiError('msg_too_long');
  const bp = blocksProblem(a.blocks, 50);
  if (bp) return invalidBlocks(bp);
  if (text !== undefined) m.text = text;
  if (a.blocks !== undefined) m.blocks = a.blocks;
  return { ok: true, channel: m.channel, ts: m.ts, text: m.text ?? '', message: ws.messageOut(m) };
}
