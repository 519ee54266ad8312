// ESLint (flat config): the recommended rules, plus the layer boundaries of docs/ARCHITECTURE.md
// as import rules, so a change that breaks a layer fails `npm run lint` (and so `npm test`, CI).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Only src/hosts/ talks to SSH and Docker. */
const MACHINE_PACKAGES = {
  paths: ['dockerode', 'ssh2', 'node-ssh'].map((name) => ({ name, message: 'Only src/hosts/ talks to SSH and Docker: use GpuHost.runtime / GpuHost.run.' })),
  patterns: [],
};

/** An import leaving its folder for one of `folders` under src/ (relative imports, any depth). */
const into = (folders, message, extra = {}) => ({ regex: `^(\\.\\./)+(${folders.join('|')})(/|\\.js$)`, message, ...extra });

/** One no-restricted-imports setting: the machine packages plus the folder's own rules. */
const restrict = ({ paths = [], patterns = [] } = {}, { machines = true } = {}) => [
  'error',
  { paths: [...(machines ? MACHINE_PACKAGES.paths : []), ...paths], patterns: [...(machines ? MACHINE_PACKAGES.patterns : []), ...patterns] },
];

const CORE = {
  paths: ['@prisma/client', 'pino', 'discord.js', '@slack/bolt', '@slack/web-api'].map((name) => ({ name, message: 'src/core/ is pure: no database, logging or chat SDK.' })),
  patterns: [
    into(
      ['adapters', 'operations', 'jobs', 'db', 'hosts', 'cli', 'http', 'app', 'log', 'log-context'],
      'src/core/ imports nothing outside core (src/util/ and config types excepted).',
    ),
    // The config's shape is welcome; its loader and schema code are not.
    into(['config'], 'src/core/ may import only types from src/config/ (import type).', { allowTypeImports: true }),
  ],
};

const ADAPTERS = {
  paths: ['@prisma/client', 'croner'].map((name) => ({ name, message: 'Adapters render; they do not query the database or schedule jobs.' })),
  patterns: [
    into(
      ['db', 'hosts', 'jobs', 'operations', 'app', 'cli', 'http'],
      'Adapters import no db/, hosts/, jobs/ or operations/ (nor the App): they get what they need from the ChatPort (src/core/port.ts).',
    ),
  ],
};

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/', 'src/db/generated/', 'src/db/generated-postgres/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // `_unused` marks a deliberately ignored parameter or binding.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-unused-expressions': ['error', { allowShortCircuit: true, allowTernary: true }],
      'no-empty': ['error', { allowEmptyCatch: true }],
      // `let x; ...closure reading x...; x = make()`: late binding for closures is intended.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  // Plain JavaScript run by Node (scripts, the fake nvidia-smi).
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: Object.fromEntries(['process', 'console', 'Buffer', 'URL', 'setTimeout', 'clearTimeout'].map((g) => [g, 'readonly'])) },
  },
  {
    // The dashboard page's script runs in the browser.
    files: ['static/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(['document', 'location', 'Node', 'fetch', 'setInterval', 'EventSource', 'window', 'performance'].map((g) => [g, 'readonly'])),
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', __filename: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // The chat stand-ins handle the raw JSON of the Slack and Discord protocols.
  {
    files: ['test/support/*-standin.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'prefer-const': ['error', { ignoreReadBeforeAssign: true }] },
  },

  // Layer boundaries. Blocks for narrower folders come later and replace the rule for their files,
  // so each repeats the machine packages (restrict() adds them).
  { files: ['src/**/*.ts'], rules: { '@typescript-eslint/no-restricted-imports': restrict() } },
  { files: ['src/core/**/*.ts'], rules: { '@typescript-eslint/no-restricted-imports': restrict(CORE) } },
  {
    files: ['src/util/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict({ patterns: [{ regex: '^\\.\\./', message: 'src/util/ is pure and stands alone: it imports nothing from the app.' }] }),
    },
  },
  { files: ['src/adapters/**/*.ts'], rules: { '@typescript-eslint/no-restricted-imports': restrict(ADAPTERS) } },
  {
    files: ['src/hosts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict(
        { patterns: [into(['adapters', 'operations', 'jobs', 'db', 'cli', 'http', 'app'], 'src/hosts/ is the bottom layer: it imports only core, config, util and log.')] },
        { machines: false },
      ),
    },
  },
);
