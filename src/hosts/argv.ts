/** Turns a fixed argv into the one string an SSH exec request carries, each word single-quoted. */
export function quoteArgv(argv: string[]): string {
  if (argv.length === 0) throw new Error('empty argv');
  return argv
    .map((word) => {
      if (word.includes('\0')) throw new Error('NUL in argv');
      return /^[A-Za-z0-9_./=:,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
    })
    .join(' ');
}
