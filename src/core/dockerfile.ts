/**
 * Reads a Dockerfile the way Docker's classic builder does, far enough to check it before a build:
 * the base of every stage, images named by COPY/ADD --from, and the ARGs it declares.
 */
import { imageAllowed } from './policy/images.js';
import { InputError, imageRef, printable } from './validate.js';

export interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

export interface Stage {
  index: number;
  name?: string;
  /** The image (or earlier stage name, or "scratch") after ARG substitution. */
  base: string;
  /** True when base names an earlier stage. */
  baseIsStage: boolean;
  instructions: Instruction[];
}

export interface Dockerfile {
  stages: Stage[];
  /** Every ARG name declared anywhere (before the first FROM or in a stage). */
  declaredArgs: Set<string>;
  /** Images (not stages) named by COPY/ADD --from. */
  copiedFrom: { line: number; image: string }[];
}

const MAX_BYTES = 256 * 1024;
const MAX_INSTRUCTIONS = 2000;
const MAX_STAGES = 32;
/** Arguments Docker lets a build set without an ARG line. */
const PREDEFINED_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

export class DockerfileError extends InputError {}

/** Splits the text into instructions: escape directive, comments, line continuations. */
export function instructions(text: string): Instruction[] {
  if (Buffer.byteLength(text) > MAX_BYTES) throw new DockerfileError(`the Dockerfile is larger than ${MAX_BYTES / 1024} KiB`);
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let escape = '\\';
  // Parser directives: only at the very top, as "# name=value" comments.
  for (const l of lines) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(l);
    if (!m) break;
    if (m[1]!.toLowerCase() === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw new DockerfileError('the escape directive must be \\ or `');
      escape = m[2]!;
    }
  }
  const out: Instruction[] = [];
  let current: { line: number; text: string } | null = null;
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (current === null && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (current !== null && trimmed.startsWith('#')) return; // comment inside a continuation
    const continues = trimmed.endsWith(escape) && !trimmed.endsWith(escape + escape);
    const body = continues ? trimmed.slice(0, -1).trimEnd() : trimmed;
    current = current === null ? { line: i + 1, text: body } : { line: current.line, text: `${current.text} ${body}` };
    if (continues) return;
    push(current);
    current = null;
  });
  if (current) push(current);
  function push({ line, text }: { line: number; text: string }) {
    const m = /^(\S+)\s*(.*)$/s.exec(text.trim());
    if (!m) return;
    out.push({ line, keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
    if (out.length > MAX_INSTRUCTIONS) throw new DockerfileError(`the Dockerfile has more than ${MAX_INSTRUCTIONS} instructions`);
  }
  return out;
}

/** $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word}; anything else is refused rather than guessed. */
export function substitute(text: string, vars: Map<string, string>, line: number): string {
  return text.replace(/\\\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$/g, (all, braced: string | undefined, plain: string | undefined) => {
    if (all === '\\$') return '$';
    if (plain !== undefined) return vars.get(plain) ?? '';
    if (braced === undefined) throw new DockerfileError(`line ${line}: a lone "$" in "${printable(text)}"`);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$/.exec(braced);
    if (!m) throw new DockerfileError(`line ${line}: cannot read "\${${printable(braced)}}"`);
    const value = vars.get(m[1]!) ?? '';
    if (m[2] === '-') return value || substitute(m[3]!, vars, line);
    if (m[2] === '+') return value ? substitute(m[3]!, vars, line) : '';
    return value;
  });
}

/** Parses a Dockerfile; buildArgs override ARG defaults (and so take part in the FROM lines). */
export function parseDockerfile(text: string, buildArgs: Record<string, string> = {}): Dockerfile {
  const all = instructions(text);
  const globals = new Map<string, string>();
  const declaredArgs = new Set<string>();
  const stages: Stage[] = [];
  const copiedFrom: Dockerfile['copiedFrom'] = [];
  const stageNames = new Map<string, number>();

  for (const ins of all) {
    if (ins.keyword === 'ARG') {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(ins.args);
      if (!m) throw new DockerfileError(`line ${ins.line}: cannot read ARG "${printable(ins.args)}"`);
      declaredArgs.add(m[1]!);
      if (stages.length === 0) {
        const given = buildArgs[m[1]!];
        globals.set(m[1]!, given ?? (m[2] === undefined ? '' : unquote(substitute(m[2], globals, ins.line))));
        continue;
      }
    } else if (ins.keyword === 'FROM') {
      if (stages.length >= MAX_STAGES) throw new DockerfileError(`more than ${MAX_STAGES} stages`);
      const words = substitute(ins.args, globals, ins.line).split(/\s+/).filter(Boolean);
      while (words[0]?.startsWith('--')) {
        if (!/^--platform=\S+$/.test(words[0])) throw new DockerfileError(`line ${ins.line}: FROM takes only --platform, not "${printable(words[0])}"`);
        words.shift();
      }
      const [ref, as, name, ...extra] = words;
      if (!ref) throw new DockerfileError(`line ${ins.line}: FROM needs an image`);
      if (extra.length || (as !== undefined && (as.toUpperCase() !== 'AS' || !name)))
        throw new DockerfileError(`line ${ins.line}: FROM IMAGE [AS NAME], not "${printable(ins.args)}"`);
      const stageName = name?.toLowerCase();
      if (stageName !== undefined) {
        if (!/^[a-z][a-z0-9_.-]{0,62}$/.test(stageName)) throw new DockerfileError(`line ${ins.line}: "${printable(stageName)}" is not a stage name`);
        if (stageNames.has(stageName)) throw new DockerfileError(`line ${ins.line}: two stages are called "${stageName}"`);
      }
      const baseIsStage = stageNames.has(ref.toLowerCase());
      stages.push({ index: stages.length, name: stageName, base: baseIsStage ? ref.toLowerCase() : ref, baseIsStage, instructions: [] });
      if (stageName !== undefined) stageNames.set(stageName, stages.length - 1);
      continue;
    } else if (stages.length === 0) {
      throw new DockerfileError(`line ${ins.line}: ${printable(ins.keyword)} before the first FROM`);
    }
    const stage = stages[stages.length - 1]!;
    stage.instructions.push(ins);
    if (ins.keyword === 'COPY' || ins.keyword === 'ADD') {
      for (const flag of ins.args.match(/(?:^|\s)--from=\S+/g) ?? []) {
        const from = flag.trim().slice('--from='.length).toLowerCase();
        const index = stageNames.get(from) ?? (/^\d+$/.test(from) ? Number(from) : undefined);
        if (index !== undefined && index < stage.index) continue;
        if (index !== undefined) throw new DockerfileError(`line ${ins.line}: --from=${printable(from)} is not an earlier stage`);
        copiedFrom.push({ line: ins.line, image: flag.trim().slice('--from='.length) });
      }
    }
  }
  if (stages.length === 0) throw new DockerfileError('the Dockerfile has no FROM');
  return { stages, declaredArgs, copiedFrom };
}

const unquote = (s: string): string => (/^"(.*)"$/s.exec(s) ?? /^'(.*)'$/s.exec(s))?.[1] ?? s;

/** The tag Docker means: a reference without tag or digest is :latest. */
export function withDefaultTag(ref: string): string {
  const lastPart = ref.slice(ref.lastIndexOf('/') + 1);
  return lastPart.includes(':') || ref.includes('@') ? ref : `${ref}:latest`;
}

export const ownPrefix = (handle: string): string => `gpubot/${handle}/`;

/**
 * Why an image may not be used as a base (FROM, COPY --from), or null when it may: it must be on
 * the allow-list or one of the user's own; another user's gpubot/ image never is.
 */
export function baseRefusal(ref: string, handle: string, allowed: string[]): string | null {
  if (ref === 'scratch') return null;
  try {
    imageRef(ref);
  } catch {
    return `"${printable(ref)}" is not an image reference`;
  }
  const tagged = withDefaultTag(ref);
  // Docker Hub spellings of the same name are the same name.
  const hub = tagged.replace(/^(?:(?:index\.|registry-1\.)?docker\.io\/)/, '');
  if (hub.startsWith('gpubot/')) return tagged.startsWith(ownPrefix(handle)) ? null : `${printable(tagged)} is not one of your images`;
  if (!imageAllowed(tagged, allowed) && !imageAllowed(ref, allowed)) return `${printable(ref)} is not on the allow-list (${allowed.join(', ')})`;
  return null;
}

/** Every refusal for the bases of a parsed Dockerfile and for the build args given. */
export function checkDockerfile(file: Dockerfile, handle: string, allowed: string[], buildArgs: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const stage of file.stages) {
    if (stage.baseIsStage) continue;
    const why = baseRefusal(stage.base, handle, allowed);
    if (why) problems.push(`FROM ${why}`);
  }
  for (const c of file.copiedFrom) {
    const why = baseRefusal(c.image, handle, allowed);
    if (why) problems.push(`line ${c.line}: COPY --from ${why}`);
  }
  for (const key of Object.keys(buildArgs)) {
    if (!file.declaredArgs.has(key) && !PREDEFINED_ARGS.has(key)) problems.push(`--build-arg ${printable(key)}: the Dockerfile declares no ARG ${printable(key)}`);
  }
  return problems;
}

/** The image the final stage stands on, following stage names back to an image (or scratch). */
export function finalBase(file: Dockerfile): string {
  let stage = file.stages[file.stages.length - 1]!;
  while (stage.baseIsStage) stage = file.stages.find((s) => s.name === stage.base)!;
  return stage.base;
}

/** Images this Dockerfile uses from the user's own (gpubot/<handle>/...), tags completed. */
export function ownBases(file: Dockerfile, handle: string): string[] {
  const refs = [...file.stages.filter((s) => !s.baseIsStage).map((s) => s.base), ...file.copiedFrom.map((c) => c.image)].map(withDefaultTag);
  return [...new Set(refs.filter((r) => r.startsWith(ownPrefix(handle))))];
}

const BUILD_ARG_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** KEY=VALUE pairs from chat: bounded, printable, each key once. */
export function buildArgs(pairs: string[]): Record<string, string> {
  if (pairs.length > 16) throw new InputError('at most 16 --build-arg');
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? undefined : pair.slice(eq + 1);
    if (!BUILD_ARG_KEY.test(key)) throw new InputError(`--build-arg "${printable(pair)}": the name must be letters, digits and _`);
    if (value === undefined) throw new InputError(`--build-arg ${key} needs a value: ${key}=VALUE`);
    // eslint-disable-next-line no-control-regex
    if (value.length > 1024 || /[\u0000-\u001f\u007f]/.test(value)) throw new InputError(`--build-arg ${key}: the value must be one line of at most 1024 printable characters`);
    if (key in out) throw new InputError(`--build-arg ${key} is given twice`);
    out[key] = value;
  }
  return out;
}

/** A path inside the workspace: relative, plain names, no "..". */
export function workspacePath(value: string): string {
  const parts = value.replace(/^\.\//, '').split('/');
  if (value.length > 255 || parts.length > 16 || parts.some((p) => !/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(p))) {
    throw new InputError(`"${printable(value)}" is not a path inside your workspace (like Dockerfile or docker/train.Dockerfile)`);
  }
  return parts.join('/');
}

/** The name of one of a user's images: a lowercase Docker path component. */
export function userImageName(value: string): string {
  if (value.length > 64 || !/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(value))
    throw new InputError(`"${printable(value)}" is not an image name (lowercase letters, digits, and . _ - between them)`);
  return value;
}

export interface Hint {
  text: string;
}

/** A history row: the instruction that made a layer and the layer's size. */
export interface LayerInfo {
  createdBy: string;
  size: number;
  /** True for layers that came with the base image. */
  fromBase: boolean;
}

/** "/bin/sh -c #(nop)  COPY dir:… in /app" → "COPY dir:… in /app"; "/bin/sh -c pip …" → "RUN pip …". */
export function instructionText(createdBy: string): string {
  const nop = /^\/bin\/sh -c #\(nop\)\s+(.*)$/s.exec(createdBy);
  if (nop) return nop[1]!.trim();
  const run = /^(?:\|\d+ (?:\S+=\S* )*)?\/bin\/sh -c (.*)$/s.exec(createdBy);
  return run ? `RUN ${run[1]!.trim()}` : createdBy.trim();
}

const MB = 1e6;
const APT_INSTALL = /\bapt(?:-get)?\s+(?:-\S+\s+)*install\b/;
const PIP_INSTALL = /\b(?:pip3?|python3?\s+-m\s+pip)\s+install\b/;
const TOOLCHAIN = /\b(?:build-essential|gcc|g\+\+|clang|cmake|make|cuda-toolkit[\w.-]*|cuda-nvcc[\w.-]*|[\w.+-]+-dev(?:el)?)\b/;

/** Advice for a built image, from its Dockerfile and its layers. */
export function hints(file: Dockerfile, layers: LayerInfo[], largeAptMB = 20): string[] {
  const out: string[] = [];
  const own = layers.filter((l) => !l.fromBase);
  const aptLayer = own.find((l) => APT_INSTALL.test(l.createdBy) && !/\/var\/lib\/apt\/lists/.test(l.createdBy) && l.size >= largeAptMB * MB);
  if (aptLayer) {
    out.push(
      `An apt-get install layer is ${(aptLayer.size / MB).toFixed(0)} MB and keeps the package lists: end that RUN with "&& rm -rf /var/lib/apt/lists/*" (same RUN, or the lists stay in the layer).`,
    );
  }
  const runs = file.stages.flatMap((s) => s.instructions.filter((i) => i.keyword === 'RUN'));
  const pipEnvOff = file.stages.some((s) => s.instructions.some((i) => i.keyword === 'ENV' && /PIP_NO_CACHE_DIR/.test(i.args)));
  if (!pipEnvOff && runs.some((r) => PIP_INSTALL.test(r.args) && !/--no-cache-dir/.test(r.args))) {
    out.push('pip install runs without --no-cache-dir: pip keeps every downloaded wheel in the layer. Add --no-cache-dir.');
  }
  const base = finalBase(file);
  if (file.stages.length === 1 && (runs.some((r) => APT_INSTALL.test(r.args) && TOOLCHAIN.test(r.args.replace(APT_INSTALL, ''))) || /devel/.test(base))) {
    out.push('A single stage carries a build toolchain (compilers, -dev packages or a devel base): build in a first stage and COPY --from it only what runs into a runtime stage.');
  }
  return out;
}
