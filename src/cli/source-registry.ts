/**
 * The kinds of source `view`, `download` and `mount` read, registered in one place. Each is one
 * module that holds its options (yargs definitions) and how its settings and credentials are
 * resolved; the function that opens its objects is registered by URL scheme in ../open-source.ts.
 *
 *   kind       selected by                          options and credentials   opened by (../open-source.ts)
 *   plain URL  http(s)://… (--url, a manifest)      (the command's own)       HttpSource
 *   Score      score:<objectId> (--object-id)       ./score.ts                ScoreSource
 *   Crypt4GH   .c4gh, a manifest's encryption       ./key-options.ts          Crypt4ghSource (over any of the others)
 *   GHGA       ghga:<accession> (--ghga)            ./ghga-options.ts         GhgaObjectSource + Crypt4ghSource
 *
 * A new protocol is a new module here and a new scheme there, not a new path through the commands.
 * Options are declared in the order of this table (it is the order `--help` lists them in).
 */
import type { Argv } from 'yargs';
import { ghgaSettingsOf, withGhgaOptions, type GhgaArgs, type GhgaSettings } from './ghga-options.js';
import { keyFilesOf, withKeyOptions, type KeyArgs } from './key-options.js';
import { scoreAccess, scoreFlagsOf, withScoreOptions, type ScoreAccess, type ScoreArgs } from './score.js';
import type { ProfileLoader } from './settings.js';

export type SourceCommand = 'view' | 'download' | 'mount';

/** The options of every source kind together, as the commands take them. */
export type SourceArgs = ScoreArgs & KeyArgs & GhgaArgs;

/** Every source kind's settings, resolved (credentials read on first use). */
export interface SourceSettings {
  score: ScoreAccess;
  /** Crypt4GH private key files (`--private-key` > `C4GH_SECRET_KEY`); none: no key given. */
  keyFiles: string[];
  /** With `--ghga` only. */
  ghga?: GhgaSettings;
}

interface SourceModule<K extends keyof SourceSettings> {
  options<T>(y: Argv<T>, command: SourceCommand): Argv<T>;
  settings(args: SourceArgs, env: NodeJS.ProcessEnv, profile: ProfileLoader): SourceSettings[K];
}

const SOURCE_MODULES: { [K in keyof SourceSettings]-?: SourceModule<K> } = {
  // `mount` and `download` check the connection before they start; `view` only when asked.
  score: {
    options: (y, command) => withScoreOptions(y, command === 'view' ? {} : { verifyConnection: true }),
    settings: (args, env, profile) => scoreAccess(scoreFlagsOf(args), env, profile),
  },
  keyFiles: { options: (y) => withKeyOptions(y), settings: (args, env) => keyFilesOf(args, env) },
  ghga: {
    options: (y, command) => withGhgaOptions(y, { view: command === 'view' }),
    settings: (args, env) => (args.ghga ? ghgaSettingsOf(args, env) : undefined),
  },
};

/** The options of every source kind, for `command`. */
export function withSourceOptions<T>(y: Argv<T>, command: SourceCommand): Argv<T> {
  return Object.values(SOURCE_MODULES).reduce((acc: Argv<T>, m) => m.options(acc, command), y);
}

/** Every source kind's settings from the flags, the environment and the profile. */
export function sourceSettingsOf(args: SourceArgs, env: NodeJS.ProcessEnv, profile: ProfileLoader): SourceSettings {
  return {
    score: SOURCE_MODULES.score.settings(args, env, profile),
    keyFiles: SOURCE_MODULES.keyFiles.settings(args, env, profile),
    ghga: SOURCE_MODULES.ghga.settings(args, env, profile),
  };
}
