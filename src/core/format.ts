export const HOUR_MS = 3_600_000;

/** Small text helpers shared by the reply builders. */
export const mib = (n: number | null): string => (n === null ? '?' : n >= 1024 ? `${(n / 1024).toFixed(1)} GiB` : `${n} MiB`);

export const memory = (used: number | null, total: number | null): string => `${mib(used)} / ${mib(total)}`;

export const percent = (n: number | null): string => (n === null ? '?' : `${Math.round(n)} %`);

export function duration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

export const isoMinute = (d: Date): string => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
