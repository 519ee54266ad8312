import type { AutocompleteInteraction } from 'discord.js';
import type { ChatPort } from '../../core/port.js';
import { completionSource } from './command.js';

const BUDGET_MS = 1500; // Discord drops an autocomplete answer after 3 s
type Choice = { name: string; value: string };

/** Choices for the focused option, from where the catalogue says its values come from. */
export async function choices(port: ChatPort, i: AutocompleteInteraction): Promise<Choice[]> {
  const focused = i.options.getFocused(true);
  const source = completionSource(i.options, focused.name);
  if (!source) return [];
  const typed = String(focused.value).toLowerCase();
  const found = await port.choices(source, { platform: 'discord', id: i.user.id, name: i.user.username }, BUDGET_MS);
  return found
    .filter((c) => c.value.toLowerCase().includes(typed))
    .slice(0, 25)
    .map((c) => ({ name: c.label.slice(0, 100), value: c.value }));
}
