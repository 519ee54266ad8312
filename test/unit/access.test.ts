import { describe, expect, it } from 'vitest';
import { discordRefusal, guildIdList } from '../../src/adapters/discord/access.js';
import { DiscordAdapter } from '../../src/adapters/discord/discord-adapter.js';
import { escapeMarkdown, toDiscordMessage } from '../../src/adapters/discord/render.js';
import { slackGuestRefusal, slackTeamRefusal, teamIdList } from '../../src/adapters/slack/access.js';
import { escapeText, toSlackMessage } from '../../src/adapters/slack/blocks.js';
import { recordingPort } from '../support/fake-port.js';
import { parseCommand } from '../../src/core/grammar.js';
import { RateLimiter, retryIn } from '../../src/core/policy/rate-limit.js';
import { reply } from '../../src/core/reply.js';
import { silentLogger } from '../../src/log.js';

describe('Discord access rules', () => {
  const access = { guildIds: ['1', '2'], allowDMs: false, roles: [] as string[] };
  it('takes the configured servers only, several of them', () => {
    expect(guildIdList(' 1, 2 ,,')).toEqual(['1', '2']);
    expect(discordRefusal(access, { guildId: '2', memberRoles: [], dmButtonOfKnownUser: false })).toBeNull();
    expect(discordRefusal(access, { guildId: '3', memberRoles: [], dmButtonOfKnownUser: false })?.title).toBe('gpubot does not serve this server');
  });
  it('refuses DMs unless allowed, except buttons the bot sent that person', () => {
    expect(discordRefusal(access, { guildId: null, memberRoles: null, dmButtonOfKnownUser: false })?.title).toBe('gpubot does not take commands in DMs');
    expect(discordRefusal(access, { guildId: null, memberRoles: null, dmButtonOfKnownUser: true })).toBeNull();
    expect(discordRefusal({ ...access, allowDMs: true }, { guildId: null, memberRoles: null, dmButtonOfKnownUser: false })).toBeNull();
  });
  it('wants one of discord.roles when set', () => {
    const withRoles = { ...access, roles: ['r1', 'r2'] };
    expect(discordRefusal(withRoles, { guildId: '1', memberRoles: ['x', 'r2'], dmButtonOfKnownUser: false })).toBeNull();
    expect(discordRefusal(withRoles, { guildId: '1', memberRoles: ['x'], dmButtonOfKnownUser: false })?.title).toBe('You may not use gpubot here');
  });
  it('refuses to start with no server configured, unless discord.allowAnyServer', async () => {
    const adapter = new DiscordAdapter({ token: 't', appId: 'a' }, silentLogger());
    await expect(adapter.start(recordingPort())).rejects.toThrow(
      /DISCORD_GUILD_ID is not set, so any server that adds the bot could use \/gpu on your hosts.*discord\.allowAnyServer: true/,
    );
  });
});

describe('Slack access rules', () => {
  const access = { teamIds: teamIdList('T1,T2'), allowGuests: false };
  it('takes the configured workspaces only', () => {
    expect(slackTeamRefusal(access, 'T2')).toBeNull();
    expect(slackTeamRefusal(access, 'T3')?.title).toBe('gpubot does not serve this workspace');
    expect(slackTeamRefusal(access, undefined)?.title).toBe('gpubot does not serve this workspace');
  });
  it('refuses guests unless slack.allowGuests', () => {
    expect(slackGuestRefusal(access, { guest: true })?.title).toBe('Guest accounts may not use gpubot');
    expect(slackGuestRefusal(access, { guest: false })).toBeNull();
    expect(slackGuestRefusal({ ...access, allowGuests: true }, { guest: true })).toBeNull();
  });
});

describe('token buckets', () => {
  it('allows a burst, then one per refill interval, and says when', () => {
    let now = 0;
    const limiter = new RateLimiter({ perMinute: 20, burst: 10 }, () => now);
    for (let i = 0; i < 10; i++) expect(limiter.take('u1').ok).toBe(true);
    const refused = limiter.take('u1');
    expect(refused).toEqual({ ok: false, retryInMs: 3000 });
    expect(retryIn(3000)).toBe('in 3 s');
    expect(limiter.take('u2').ok).toBe(true); // per key
    now += 3000;
    expect(limiter.take('u1').ok).toBe(true);
    expect(limiter.take('u1').ok).toBe(false);
  });
});

describe('inert text', () => {
  const hostile = '@everyone <!channel> <@123> [click](https://evil.example) **b** # h\n- item\n```';
  it('Discord: no formatting, links or mentions survive', () => {
    const e = escapeMarkdown(hostile);
    expect(e).toContain('@\u200beveryone');
    expect(e).toContain('\\<!channel\\>');
    expect(e).toContain('\\[click\\](https://evil.example)');
    expect(e).toContain('\\*\\*b\\*\\*');
    expect(e).toContain('\n\\- item');
    expect(e).not.toContain('```');
    const msg = toDiscordMessage(
      reply('info', hostile, [
        { type: 'text', text: hostile },
        { type: 'code', text: hostile },
      ]),
    );
    expect(msg.allowedMentions).toEqual({ parse: [] });
    const embed = msg.embeds[0]!.toJSON();
    expect(embed.title).not.toContain('<!channel>');
    expect(embed.description!.match(/```/g)).toHaveLength(2);
  });
  it('Slack: no mention, link or fence survives, also in the fallback text', () => {
    expect(escapeText(hostile)).not.toMatch(/<|>|```/);
    const msg = toSlackMessage(reply('info', hostile, [{ type: 'code', text: hostile }]));
    expect(msg.text).not.toContain('<!channel>');
    const code = String((msg.blocks[1]!.text as { text: string }).text);
    expect(code.match(/```/g)).toHaveLength(2);
  });
});

describe('link grammar', () => {
  it('takes a code, or yes/no and a code (what the confirmation buttons say)', () => {
    expect(parseCommand('link')).toEqual({ command: 'link' });
    expect(parseCommand('link k7q2xm')).toEqual({ command: 'link', code: 'K7Q2XM' });
    expect(parseCommand('link yes k7q2xm')).toEqual({ command: 'link', code: 'K7Q2XM', answer: 'yes' });
    expect(parseCommand('link No K7Q2XM')).toEqual({ command: 'link', code: 'K7Q2XM', answer: 'no' });
    expect(() => parseCommand('link maybe K7Q2XM')).toThrow('"maybe" is not "yes" or "no"');
    expect(() => parseCommand('link yes ../etc')).toThrow('is not a link code');
  });
});
