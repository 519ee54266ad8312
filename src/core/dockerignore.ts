/**
 * .dockerignore as Docker reads it (moby/patternmatcher): one pattern a line, "#" comments,
 * "!" exceptions, "*" and "?" within one path part, "**" across parts; a pattern that matches a
 * directory excludes what is inside it; the last matching line wins.
 */
interface Pattern {
  regex: RegExp;
  exception: boolean;
  /** Plain path without wildcards: tar on the host can skip it without reading it. */
  literal?: string;
}

export class DockerIgnore {
  private readonly patterns: Pattern[];

  constructor(text: string) {
    this.patterns = text
      .replace(/\r\n?/g, '\n')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .slice(0, 1000)
      .flatMap((l) => {
        const exception = l.startsWith('!');
        const path = clean(exception ? l.slice(1).trim() : l);
        if (path === '' || path === '.') return [];
        return [{ regex: toRegex(path), exception, literal: /^[A-Za-z0-9._/-]+$/.test(path) && !path.split('/').includes('..') ? path : undefined }];
      });
  }

  /** Is this context path (relative, "/"-separated) left out of the build? */
  excludes(path: string): boolean {
    const p = clean(path);
    if (p === '' || p === '.') return false;
    const parents = p.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const pattern of this.patterns) {
      if (parents.some((q) => pattern.regex.test(q))) excluded = !pattern.exception;
    }
    return excluded;
  }

  /** Paths tar may leave out by itself: only when no exception could bring anything back. */
  literalExcludes(): string[] {
    if (this.patterns.some((p) => p.exception)) return [];
    return this.patterns.flatMap((p) => (p.literal ? [p.literal] : []));
  }
}

/** filepath.Clean-ish: no leading "./" or "/", no empty or "." parts, ".." resolved. */
function clean(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

function toRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        re += `[${body.startsWith('^') || body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else if (ch === '\\' && i + 1 < pattern.length) {
      i++;
      re += pattern[i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
