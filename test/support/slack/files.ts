/**
 * Slack's file upload v2, as @slack/web-api's `filesUploadV2` drives it:
 *   1. files.getUploadURLExternal {filename, length, alt_text?} → {upload_url, file_id}; the URL is
 *      on the stand-in: POST /upload/v1/<file_id>;
 *   2. POST the bytes to upload_url (raw body, or multipart with a `file` part) → 200 "OK - <size>";
 *   3. files.completeUploadExternal {files: [{id, title?}], channel_id?, thread_ts?, initial_comment?}
 *      → the files; with channel_id a bot message sharing them is stored (chat.update can't edit it
 *      in Slack either, but it is a message like any other here).
 * Every file is in `uploads` (bytes included). Breaches listed in `violations`: a POST to an unknown
 * upload URL, a size that differs from the declared length, completing a file never uploaded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Waiters, parseMultipart, readBody, sendText } from '../standin-http.js';
import { apiError, invalidArgs, isObj, str } from './rules.js';
import type { Json, SlackUpload, StoredMessage } from './types.js';
import type { SlackWorkspace } from './workspace.js';

export const UPLOAD_PATH = '/upload/v1/';
/** Slack's upper bound for one file. */
const MAX_FILE_BYTES = 1024 * 1024 * 1024;

export class Files {
  readonly completions = new Waiters<SlackUpload>();

  constructor(private readonly ws: SlackWorkspace) {}

  getUploadUrl(a: Json): Json {
    const filename = str(a.filename);
    const length = Number(str(a.length));
    if (!filename) return invalidArgs('missing required field: filename');
    if (!Number.isInteger(length) || length < 0) return invalidArgs('missing or invalid required field: length');
    if (length > MAX_FILE_BYTES) return apiError('file_too_large');
    const fileId = this.ws.nextId('F');
    const altText = str(a.alt_text);
    this.ws.uploads.push({ fileId, filename, length, completed: false, ...(altText !== undefined ? { altText } : {}) });
    return { ok: true, upload_url: `${this.ws.baseUrl}${UPLOAD_PATH}${fileId}`, file_id: fileId };
  }

  /** The upload POST itself (no Web API token: upload URLs are pre-authorised). */
  async receive(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    const raw = await readBody(req);
    const upload = this.ws.uploads.find((u) => u.fileId === fileId);
    if (!upload || upload.completed) {
      this.ws.violation(`upload POST to ${upload ? 'an already completed' : 'an unknown'} upload URL (file ${fileId})`);
      return sendText(res, 404, 'Not Found');
    }
    const ctype = String(req.headers['content-type'] ?? '');
    let data = raw;
    let contentType = ctype;
    if (ctype.toLowerCase().startsWith('multipart/form-data')) {
      const file = (await parseMultipart(raw, ctype)).files[0];
      if (!file) {
        this.ws.violation(`upload POST for file ${fileId}: multipart body without a file part`);
        return sendText(res, 400, 'no file');
      }
      data = file.data;
      contentType = file.contentType;
    }
    if (data.length !== upload.length) this.ws.violation(`upload of file ${fileId} (${upload.filename}) sent ${data.length} bytes; files.getUploadURLExternal declared ${upload.length}`);
    upload.data = data;
    upload.contentType = contentType;
    sendText(res, 200, `OK - ${data.length}`);
  }

  complete(a: Json): Json {
    const list = a.files;
    if (!Array.isArray(list) || list.length === 0 || !list.every((f) => isObj(f) && typeof f.id === 'string')) return invalidArgs('files must be a non-empty JSON array of {id, title}');
    const channelId = str(a.channel_id);
    const threadTs = str(a.thread_ts);
    const initialComment = str(a.initial_comment);
    if (threadTs && !channelId) return invalidArgs('thread_ts requires channel_id');
    const chosen: { upload: SlackUpload; title: string }[] = [];
    for (const f of list as Json[]) {
      const upload = this.ws.uploads.find((u) => u.fileId === f.id);
      if (!upload || upload.completed) return apiError('file_not_found');
      if (!upload.data) {
        this.ws.violation(`files.completeUploadExternal for file ${upload.fileId} (${upload.filename}) that was never uploaded`);
        return apiError('file_not_found');
      }
      chosen.push({ upload, title: str(f.title) ?? upload.filename });
    }
    let message: StoredMessage | undefined;
    if (channelId) {
      message = {
        channel: this.ws.dmFor(channelId),
        ts: this.ws.nextTs(),
        fromBot: true,
        text: initialComment ?? '',
        files: chosen.map(({ upload, title }) => ({ id: upload.fileId, name: upload.filename, title })),
        ...(threadTs ? { thread_ts: threadTs } : {}),
      };
      this.ws.messages.push(message);
    }
    for (const { upload, title } of chosen) {
      Object.assign(upload, { completed: true, title }, channelId ? { channelId: message!.channel, messageTs: message!.ts } : {});
      if (threadTs) upload.threadTs = threadTs;
      if (initialComment !== undefined) upload.initialComment = initialComment;
      this.completions.notify(upload);
    }
    return { ok: true, files: chosen.map(({ upload, title }) => this.fileOut(upload, title, message)) };
  }

  private fileOut(u: SlackUpload, title: string, message: StoredMessage | undefined): Json {
    const url = `${this.ws.baseUrl}/files/${u.fileId}/${encodeURIComponent(u.filename)}`;
    return {
      id: u.fileId,
      created: Math.floor(Date.now() / 1000),
      timestamp: Math.floor(Date.now() / 1000),
      name: u.filename,
      title,
      mimetype: u.contentType ?? 'application/octet-stream',
      filetype: u.filename.includes('.') ? u.filename.split('.').pop()!.toLowerCase() : 'binary',
      user: this.ws.botUserId,
      size: u.data?.length ?? 0,
      is_public: message !== undefined && message.channel.startsWith('C'),
      url_private: url,
      url_private_download: url,
      ...(u.altText !== undefined ? { alt_txt: u.altText } : {}),
      shares: message ? { [message.channel.startsWith('C') ? 'public' : 'private']: { [message.channel]: [{ ts: message.ts, ...(message.thread_ts ? { thread_ts: message.thread_ts } : {}) }] } } : {},
      channels: message ? [message.channel] : [],
    };
  }
}
