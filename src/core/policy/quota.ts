import type { QuotaLimits } from '../../config/schema.js';

/** The limits that apply to one user: their own entry over the defaults. */
export function limitsFor(handle: string, defaults: QuotaLimits, users: Record<string, Partial<QuotaLimits>>): QuotaLimits {
  return { ...defaults, ...Object.fromEntries(Object.entries(users[handle] ?? {}).filter(([, v]) => v !== undefined)) };
}

export type QuotaLimit = 'gpuHoursPerWeek' | 'maxGpus' | 'maxHours';
/** A refusal names the limit it hit, so callers decide on it rather than on the text. */
export type QuotaCheck = { ok: true } | { ok: false; reason: string; limit: QuotaLimit };

/** Weekly GPU-hours, concurrent GPUs and longest duration, checked when a request is made. */
export function checkRequest(limits: QuotaLimits, heldGpus: number, wantGpus: number, hours: number, usedGpuHours = 0): QuotaCheck {
  if (usedGpuHours >= limits.gpuHoursPerWeek) {
    return {
      ok: false,
      limit: 'gpuHoursPerWeek',
      reason: `quota gpuHoursPerWeek: you have used ${usedGpuHours.toFixed(1)} of your ${limits.gpuHoursPerWeek} GPU-hours this week ("quota" shows when the window ends)`,
    };
  }
  if (heldGpus + wantGpus > limits.maxGpus) {
    return {
      ok: false,
      limit: 'maxGpus',
      reason: `quota maxGpus: you hold ${heldGpus} GPU${heldGpus === 1 ? '' : 's'} and asked for ${wantGpus} more; your limit is ${limits.maxGpus} at a time`,
    };
  }
  if (hours > limits.maxHours) return { ok: false, limit: 'maxHours', reason: `quota maxHours: you asked for ${hours} h; your limit is ${limits.maxHours} h` };
  return { ok: true };
}

/** Without --hours: a working day, never more than the user's limit. */
export const defaultHours = (limits: QuotaLimits): number => Math.min(24, limits.maxHours);

/** The refusal code for a quota that was hit: the weekly GPU-hours are their own (they may queue). */
export const quotaCode = (limit: QuotaLimit): 'over-gpu-hours' | 'over-quota' => (limit === 'gpuHoursPerWeek' ? 'over-gpu-hours' : 'over-quota');
