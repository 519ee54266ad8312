/** Counts the changes to who holds what (leases, their containers, drained flags) this process made. */
let changes = 0;

/** Call after committing a change to leases, the container they belong to, or a host's drained flag. */
export function holdersChanged(): void {
  changes++;
}

/**
 * One database read shared by concurrent callers (100 `status` at once cost one read, not 100).
 * A caller joins the read in flight only when this process changed nothing since it began, so
 * nobody sees less than what this process had committed when they asked.
 */
export function sharedRead<T>(read: () => Promise<T>): () => Promise<T> {
  let current: { at: number; result: Promise<T> } | undefined;
  return () => {
    if (current && current.at === changes) return current.result;
    const entry = { at: changes, result: read() };
    current = entry;
    const done = () => {
      if (current === entry) current = undefined;
    };
    entry.result.then(done, done);
    return entry.result;
  };
}
