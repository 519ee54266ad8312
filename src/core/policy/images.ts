/** Image allow-list: `*` matches any run of characters, everything else literally. */
export function imageAllowed(image: string, patterns: string[]): boolean {
  return patterns.some((p) => new RegExp(`^${p.split('*').map(escape).join('.*')}$`).test(image));
}

const escape = (s: string): string => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
