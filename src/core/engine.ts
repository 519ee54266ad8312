import type { ClusterView } from './cluster.js';
import { helpReply } from './commands/help.js';
import { statusReply } from './commands/status.js';
import { parseCommand, parseWords } from './grammar.js';
import { refuse, reply, type Block, type ProgressSink, type RefusalCode, type Reply } from './reply.js';
import type { ChatIdentity } from './port.js';
import type { Actor, CommandName, Request } from './requests.js';
import { InputError } from './validate.js';
import { userMessage } from '../util/errors.js';

export interface CommandContext {
  actor: Actor;
  progress: ProgressSink;
}

/** Handlers for the commands that change things; supplied by the app so the core stays pure. */
export type Handler<R extends Request = Request> = (request: R, ctx: CommandContext) => Promise<Reply>;
export type Handlers = { [K in CommandName]?: Handler<Extract<Request, { command: K }>> };

export interface EngineDeps {
  cluster: ClusterView;
  /** Clusters beside the hosts (Slurm): their names, and a status section for each. */
  moreStatus?: { names: string[]; sections: (name?: string) => Promise<Block[]> };
  handlers?: Handlers;
  /**
   * Runs around each parsed command (its handling and onCommand): the app uses it for log
   * context and to track commands in flight. It may answer instead (e.g. while shutting down).
   */
  around?: (actor: Actor, request: Request, work: () => Promise<Reply>) => Promise<Reply>;
  /** The gpubot user behind a chat identity (for handleFrom). */
  identify?: (who: ChatIdentity) => Promise<Actor>;
  /** An error no command turned into a reply (the user could not be resolved, a bug): for the log. */
  onUnexpected?: (err: unknown, who: ChatIdentity) => void;
  /** Called once per command with its outcome, for logs, audit and metrics. */
  onCommand?: (event: { actor: Actor; command: CommandName | 'invalid'; target?: string; code: RefusalCode | undefined; ms: number; reply: Reply; error?: unknown }) => void;
}

/** The one entry point every adapter calls: text in, Reply out. */
export class Engine {
  constructor(private readonly deps: EngineDeps) {}

  /**
   * The adapters' door: input from a chat identity, answered as its user. The one place where
   * an unexpected error becomes "Something went wrong"; this never throws.
   */
  async handleFrom(who: ChatIdentity, input: string | string[], progress: ProgressSink = () => {}): Promise<Reply> {
    try {
      if (!this.deps.identify) throw new Error('no way to resolve chat users');
      return await this.handleText(await this.deps.identify(who), input, progress);
    } catch (err) {
      this.deps.onUnexpected?.(err, who);
      return unexpected(err);
    }
  }

  /** Text as typed in chat, or words already split (a terminal's argv). */
  async handleText(actor: Actor, text: string | string[], progress: ProgressSink = () => {}): Promise<Reply> {
    let request: Request;
    try {
      request = typeof text === 'string' ? parseCommand(text) : parseWords(text);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      const answer = refuse(err.code, 'That command was not understood', capitalize(err.message));
      this.deps.onCommand?.({ actor, command: 'invalid', code: answer.code, ms: 0, reply: answer });
      return answer;
    }
    return this.handle(actor, request, progress);
  }

  async handle(actor: Actor, request: Request, progress: ProgressSink = () => {}): Promise<Reply> {
    const work = () => this.handleNow(actor, request, progress);
    return this.deps.around ? this.deps.around(actor, request, work) : work();
  }

  private async handleNow(actor: Actor, request: Request, progress: ProgressSink): Promise<Reply> {
    const started = performance.now();
    let result: Reply;
    let error: unknown;
    try {
      result = await this.dispatch(request, { actor, progress });
    } catch (err) {
      if (!(err instanceof InputError)) error = err;
      result = err instanceof InputError ? refuse(err.code, 'Refused', capitalize(err.message)) : unexpected(err);
    }
    // A failure without a code is a slip in a handler: counted as internal, never as done.
    if (result.tone === 'error' && result.code === undefined) result = { ...result, code: 'internal' };
    const target = 'name' in request ? request.name : 'host' in request ? request.host : undefined;
    this.deps.onCommand?.({ actor, command: request.command, target, code: result.code, ms: performance.now() - started, reply: result, error });
    return result;
  }

  private async dispatch(request: Request, ctx: CommandContext): Promise<Reply> {
    switch (request.command) {
      case 'help':
        return helpReply(request.topic);
      case 'status': {
        const more = this.deps.moreStatus;
        const chart = request.chart ? this.deps.handlers?.status : undefined;
        if (request.chart && !chart) return refuse('unavailable', '"status --chart" is not available in this deployment');
        if (more && request.host && more.names.includes(request.host)) return reply('info', `Status of ${request.host}`, await more.sections(request.host), 'channel');
        if (request.host && !this.deps.cluster.hostNames().includes(request.host)) {
          return refuse('not-found', `There is no host "${request.host}"`, `Known hosts: ${[...this.deps.cluster.hostNames(), ...(more?.names ?? [])].join(', ')}`);
        }
        if (chart) return chart(request, ctx);
        const [hosts, extra] = await Promise.all([this.deps.cluster.snapshot(request.host ? [request.host] : undefined), more && !request.host ? more.sections() : []]);
        const base = statusReply(hosts);
        return extra.length ? { ...base, blocks: [...base.blocks, ...extra] } : base;
      }
      default: {
        const handler = this.deps.handlers?.[request.command] as Handler | undefined;
        if (!handler) return refuse('unavailable', `"${request.command}" is not available in this deployment`);
        return handler(request, ctx);
      }
    }
  }
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** What a user sees when something broke that no command meant to refuse: the one such answer. */
const unexpected = (err: unknown): Reply => refuse('internal', 'Something went wrong', userMessage(err));
