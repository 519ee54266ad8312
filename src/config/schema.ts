import { Cron } from 'croner';
import { z } from 'zod';

/** Names that end up in container names, directory names and SSH argv: keep them boring. */
export const slugPattern = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

const hostKeyPattern = /^(?:(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+/]+={0,3}|SHA256:[A-Za-z0-9+/]{43}=?)$/;

const sshSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().regex(/^[a-z_][a-z0-9_.-]*$/i, 'must be a plain user name'),
  privateKeyPath: z.string().min(1),
  hostKey: z
    .string()
    .transform((s) => s.trim().split(/\s+/).slice(0, 2).join(' '))
    .pipe(z.string().regex(hostKeyPattern, 'must be a public key line ("ssh-ed25519 AAAA...") or a "SHA256:..." fingerprint')),
  connectTimeoutMs: z.number().int().positive().default(5000),
});

export const hostSchema = z.strictObject({
  name: z.string().regex(slugPattern, 'must match [a-z0-9-]+'),
  ssh: sshSchema.optional(),
  dockerSocket: z.string().startsWith('/', 'must be an absolute path').default('/var/run/docker.sock'),
  gpuMode: z.enum(['device-requests', 'nvidia-runtime']).default('device-requests'),
});

/** A Unix user name on the cluster (it reaches runuser/sudo argv and Slurm's job owner). */
const unixUserPattern = /^[a-z_][a-z0-9_-]{0,31}$/;

/** A Slurm cluster driven through its login node: jobs instead of containers, Slurm decides placement. */
export const slurmSchema = z.strictObject({
  /** How the cluster is named in chat: "status NAME", "run --host NAME". Not a host name in use. */
  name: z.string().regex(slugPattern, 'must match [a-z0-9-]+').default('slurm'),
  /** The login node, reached like a host. Its user must be root (jobs are submitted with runuser) or may sudo -u to the mapped users. */
  ssh: sshSchema,
  partition: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a Slurm partition name'),
  account: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a Slurm account name')
    .optional(),
  /** --time when run has no --hours (never more than maxHours), and the longest a job may ask for (also through extend). */
  defaultHours: z
    .number()
    .positive()
    .max(24 * 365)
    .default(24),
  maxHours: z
    .number()
    .positive()
    .max(24 * 365)
    .default(72),
  /** run without --host goes to the cluster (true) or to the hosts (false). */
  default: z.boolean().default(false),
  /** Chat user handle -> Unix user on the cluster. */
  users: z.record(z.string(), z.strictObject({ unixUser: z.string().regex(unixUserPattern, 'must be a plain Unix user name') })).default({}),
  /** For users not listed: a pattern with {handle}, e.g. "{handle}" or "lab-{handle}". Unset: unlisted users may not use the cluster. */
  unixUser: z
    .string()
    .regex(/^[a-z0-9_-]*\{handle\}[a-z0-9_-]*$/, 'must contain {handle} and otherwise only a-z 0-9 _ -')
    .optional(),
  /** The user's directory on the cluster's shared filesystem (job's working dir and output): {unixUser} or {handle} is replaced. */
  workspace: z
    .string()
    .startsWith('/', 'must be an absolute path')
    .regex(/^[A-Za-z0-9_./{}-]+$/, 'only letters, digits and _ . / - {unixUser} {handle}')
    .default('/home/{unixUser}'),
  /** none: the command runs as a plain process in the allocation; docker: in a container on the allocated node's Docker, with the job's GPUs. */
  containers: z.enum(['none', 'docker']).default('none'),
  /** containers: docker: the Docker socket on the compute nodes (the mapped users must be allowed to use it). */
  dockerSocket: z
    .string()
    .regex(/^\/(?:[A-Za-z0-9_./-]|\{node\})+$/, "must be an absolute path of letters, digits and _ . / - (and {node} for the compute node's name)")
    .default('/var/run/docker.sock'),
});

const sharedMountSchema = z.strictObject({
  hostPath: z.string().startsWith('/', 'must be an absolute path'),
  containerPath: z.string().startsWith('/', 'must be an absolute path'),
  readOnly: z.boolean().default(true),
});

const quotaSchema = z.strictObject({
  maxGpus: z.number().int().min(0).max(1024).optional(),
  gpuHoursPerWeek: z.number().min(0).optional(),
  maxHours: z
    .number()
    .positive()
    .max(24 * 365)
    .optional(),
});

const bucketSchema = z.strictObject({
  perMinute: z.number().positive().max(10_000),
  burst: z.number().int().min(1).max(10_000),
});

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** A duration like 10m, 1h, 1.5h or 2d, in milliseconds. */
export const durationSchema = z
  .string()
  .regex(/^\d{1,5}(?:\.\d{1,2})?[smhd]$/, 'must look like 10m, 1h or 2d')
  .transform((s) => Number(s.slice(0, -1)) * UNIT_MS[s.slice(-1) as keyof typeof UNIT_MS]);

const cronSchema = z.string().refine((expr) => {
  try {
    new Cron(expr, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}, 'must be a cron expression like "*/5 * * * *"');

export const configSchema = z
  .strictObject({
    hosts: z
      .array(hostSchema)
      .min(1, 'at least one host is needed')
      .default([{ name: 'local', dockerSocket: '/var/run/docker.sock', gpuMode: 'device-requests' }]),
    storage: z
      .strictObject({
        userRoot: z.string().startsWith('/', 'must be an absolute path').default('/srv/gpubot/users'),
        mountPath: z.string().startsWith('/', 'must be an absolute path').default('/workspace'),
        shared: z.array(sharedMountSchema).default([]),
        shmSize: z
          .string()
          .regex(/^\d{1,6}[kmg]$/i, 'must look like 8g or 512m')
          .default('8g'),
        /** user: containers run as the user's own uid (files in their dir are theirs, 0700); root: as root (flagged in "admin hosts"). */
        runAs: z.enum(['user', 'root']).default('user'),
        /** First uid/gid of the range gpubot users get (uidBase + user id), the same on every host. */
        uidBase: z
          .number()
          .int()
          .min(1000)
          .max(2 ** 31 - 2 ** 24)
          .default(20000),
      })
      .prefault({}),
    /** Limits on every container gpubot starts. */
    limits: z
      .strictObject({
        /** Most processes/threads in one container (fork bombs). */
        pids: z.number().int().min(64).max(4_194_304).default(4096),
        /** Memory per GPU the container gets (e.g. 64g); off when absent. */
        memoryPerGpu: z
          .string()
          .regex(/^\d{1,6}[kmg]$/i, 'must look like 64g or 512m')
          .optional(),
        /** CPUs per GPU the container gets (e.g. 8); off when absent. */
        cpusPerGpu: z.number().positive().max(1024).optional(),
        /** The memlock ulimit in bytes (-1: unlimited, what NCCL and pinned memory want). Lower only where dockerd cannot raise its own limit. */
        memlock: z.number().int().min(-1).default(-1),
      })
      .prefault({}),
    images: z
      .strictObject({
        default: z.string().min(1).default('pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime'),
        allowed: z.array(z.string().min(1)).default(['pytorch/pytorch:*', 'nvcr.io/nvidia/pytorch:*']),
        /** "image build": users' own images, built from a Dockerfile in their workspace. */
        build: z
          .strictObject({
            timeoutMinutes: z
              .number()
              .int()
              .min(1)
              .max(24 * 60)
              .default(60),
            /** Memory of each build step's container (Docker's build "memory"), like 8g. */
            memory: z
              .string()
              .regex(/^\d{1,6}[kmg]$/i, 'must look like 8g or 512m')
              .default('8g'),
            /** CPUs each build step may use (Docker's build "cpuquota" over a 100 ms period). */
            cpus: z.number().positive().max(1024).default(4),
          })
          .prefault({}),
        perUser: z
          .strictObject({
            /** Image versions a user may hold, all names together. */
            maxCount: z.number().int().min(0).max(10_000).default(10),
            /** GB a user's images may add on top of their base images, all versions together. */
            maxGB: z.number().min(0).default(50),
            /** The cleanup job keeps this many newest versions of each name (never one in use). */
            keep: z.number().int().min(1).max(1000).default(3),
          })
          .prefault({}),
        /** Images (globs) that have JupyterLab: the only ones "run --jupyter" accepts. */
        jupyter: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    quotas: z
      .strictObject({
        default: quotaSchema.prefault({}).transform((q) => ({ maxGpus: q.maxGpus ?? 4, gpuHoursPerWeek: q.gpuHoursPerWeek ?? 168, maxHours: q.maxHours ?? 72 })),
        users: z.record(z.string(), quotaSchema).default({}),
        /** GPU-hours count over the last 7 days (rolling) or since Monday 00:00 UTC (calendar). */
        window: z.enum(['rolling', 'calendar']).default('calendar'),
        /** At 100 % of gpuHoursPerWeek: refuse new requests, or queue "run --queue" ones (they launch last, once under quota). */
        atLimit: z.enum(['refuse', 'queue']).default('refuse'),
        /** No container lives longer than this from its start, whatever extends and keeps. */
        maxLifetimeHours: z
          .number()
          .positive()
          .max(24 * 365)
          .default(168),
      })
      .prefault({}),
    admins: z.array(z.string().min(1)).default([]),
    /** When each scheduled job runs (cron, the bot's local time). */
    schedule: z
      .strictObject({
        reconcile: cronSchema.default('* * * * *'),
        expiry: cronSchema.default('* * * * *'),
        cleanup: cronSchema.default('*/10 * * * *'),
        quota: cronSchema.default('*/5 * * * *'),
        unmanaged: cronSchema.default('*/5 * * * *'),
        idle: cronSchema.default('*/5 * * * *'),
        queue: cronSchema.default('* * * * *'),
        telemetry: cronSchema.default('17 * * * *'),
        /** Slurm job start/end DMs (only with slurm:). */
        slurm: cronSchema.default('* * * * *'),
      })
      .prefault({}),
    cleanup: z
      .strictObject({
        /** A managed container stopped this long is removed (never its files). */
        removeStoppedAfter: durationSchema.prefault('24h'),
        /** Its owner is told this long before, with a Keep button. */
        warnBefore: durationSchema.prefault('2h'),
        /** How long "keep NAME" (and the Keep button) holds off the removal. */
        keepFor: durationSchema.prefault('24h'),
        /** Also remove dangling (untagged) images on every host that answers. */
        pruneImages: z.boolean().default(false),
      })
      .prefault({}),
    expiry: z
      .strictObject({
        /** Reminders before a container or reservation ends. */
        remindBefore: z.array(durationSchema).prefault(['1h', '10m']),
      })
      .prefault({}),
    idle: z
      .strictObject({
        /** A GPU below this utilization (%) counts as idle. */
        threshold: z.number().min(0).max(100).default(5),
        /** Idle this long: the owner is asked (Keep / Stop now). */
        warnAfter: durationSchema.prefault('2h'),
        /** Idle this long with no answer: stopped (never removed). */
        stopAfter: durationSchema.prefault('3h'),
        /** How long "keep NAME" (the Keep button) protects a running container. */
        keepFor: durationSchema.prefault('4h'),
        /** An open gateway session (ssh, sftp, a forward) counts as activity: the container is not idle. */
        countSessions: z.boolean().default(true),
      })
      .prefault({}),
    /** The side port for /healthz and /metrics; off when absent. */
    http: z
      .strictObject({
        port: z.number().int().min(0).max(65535),
        host: z.string().default('127.0.0.1'),
        /** When set, /metrics answers only "Authorization: Bearer TOKEN"; /healthz stays open. */
        metricsToken: z.string().min(16, 'use at least 16 characters (openssl rand -hex 24)').optional(),
        /** The address people open for the dashboard (behind a proxy, say); default http://host:port. */
        publicUrl: z.url({ protocol: /^https?$/ }).optional(),
        /** The read-only web dashboard at /dashboard. */
        dashboard: z
          .strictObject({
            /** How long a link from "dashboard" in chat stays valid. */
            linkHours: z
              .number()
              .min(0.01)
              .max(24 * 90)
              .default(12),
            /** Open a team view at /dashboard/public with no link (trusted networks only). */
            public: z.boolean().default(false),
          })
          .prefault({}),
      })
      .optional(),
    /** The live feed from each host. */
    telemetry: z
      .strictObject({
        /** How often each host's GPUs are sampled (one nvidia-smi loop per host over its kept connection). */
        intervalMs: z.number().int().min(100).max(600_000).default(2000),
        /** How long the 1-minute means per GPU (GpuSample) are kept. */
        retentionDays: z.number().int().min(1).max(3650).default(14),
      })
      .prefault({}),
    /** Who may use the bot from Discord (servers come from DISCORD_GUILD_ID). */
    discord: z
      .strictObject({
        /** Accept commands sent to the bot in a DM. */
        allowDMs: z.boolean().default(false),
        /** Run with no DISCORD_GUILD_ID: any server that adds the bot may use it. */
        allowAnyServer: z.boolean().default(false),
        /** When set, only members with one of these role ids may use /gpu. */
        roles: z.array(z.string().regex(/^\d{1,20}$/, 'must be a Discord role id (digits)')).default([]),
      })
      .prefault({}),
    /** Who may use the bot from Slack (workspaces come from SLACK_TEAM_ID, default the token's own). */
    slack: z
      .strictObject({
        /** Let guest accounts (single- and multi-channel guests) use the bot. */
        allowGuests: z.boolean().default(false),
      })
      .prefault({}),
    /** Per-user token buckets: `perMinute` refill and `burst` size; over the limit nothing happens. */
    rateLimits: z
      .strictObject({
        commands: bucketSchema.prefault({ perMinute: 20, burst: 10 }),
        linkCodes: bucketSchema.prefault({ perMinute: 1, burst: 3 }),
        keyAdditions: bucketSchema.prefault({ perMinute: 1, burst: 5 }),
        /** Runs one user may have waiting in the queue at once. */
        queuedRuns: z.number().int().min(0).max(1000).default(5),
      })
      .prefault({}),
    /** The SSH gateway into containers; off when absent. */
    gateway: z
      .strictObject({
        port: z.number().int().min(0).max(65535).default(2222),
        listen: z.string().min(1).default('0.0.0.0'),
        /** Generated at first start (ed25519) and kept. */
        hostKeyPath: z.string().min(1).default('./data/gateway_host_ed25519'),
        /** The name users type (shown in replies); default: this machine's hostname. */
        publicHost: z
          .string()
          .regex(/^[A-Za-z0-9.:-]+$/, 'must be a host name or address')
          .optional(),
      })
      .optional(),
    timeouts: z
      .strictObject({
        /** How long a command waits for a host's connection; a connection failing this long is "down". */
        hostMs: z.number().int().positive().default(3000),
      })
      .prefault({}),
    slurm: slurmSchema.optional(),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.hosts.forEach((h, i) => {
      if (seen.has(h.name)) ctx.addIssue({ code: 'custom', path: ['hosts', i, 'name'], message: `duplicate host name "${h.name}"` });
      seen.add(h.name);
    });
    if (cfg.slurm && seen.has(cfg.slurm.name)) ctx.addIssue({ code: 'custom', path: ['slurm', 'name'], message: `"${cfg.slurm.name}" is also a host name` });
  });

export type Config = z.output<typeof configSchema>;
export type HostConfig = z.output<typeof hostSchema>;
export type SlurmConfig = z.output<typeof slurmSchema>;
export type QuotaLimits = Config['quotas']['default'];
