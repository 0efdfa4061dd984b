/**
 * The precedence of settings, in one place: each setting is taken from the first of its flag, its
 * environment variable, the chosen profile of the config file (./config-file.ts) and its default.
 * An empty environment variable counts as unset. A command loads the profile once (`loadProfile`)
 * and hands it, with the parsed flags and the environment, to its resolver (./view-settings.ts for
 * `view`), which builds one typed object: nothing after it reads `args`, `process.env` or the file.
 *
 * Each resolved value keeps its origin (`Setting`), where a message depends on it: `--token` warns
 * (the process list shows it), `slicefs info` says where every Score setting came from.
 */
import { chooseProfile, envValue, readConfigFile, type ChosenProfile, type ConfigFile, type Origin, type ProfileSettings } from './config-file.js';

export type { Origin } from './config-file.js';

/** One resolved setting: its value (undefined: set nowhere) and where it came from. */
export interface Setting<T = string> {
  value?: T;
  origin: Origin;
  /** Human-readable: `--storage-url`, `STORAGE_URL`, `profile argo`; for a default, what it is (`not set`, `default: the storage URL`). */
  from: string;
}

/** The config file and the profile chosen in it, read once per command. */
export interface LoadedProfile {
  file: ConfigFile;
  chosen: ChosenProfile;
  /** How messages name the settings' source: `profile argo`, or `config file` for the top level. */
  label: string;
}

/**
 * The config file (`--config` > `SLICEFS_CONFIG` > the default location) and its chosen profile
 * (`--profile` > `SLICEFS_PROFILE` > the file's), read on first use and once: a command whose
 * settings all come from flags and the environment never reads the file (a broken file then does
 * not stop it), and one that needs the file for two settings reads it once.
 */
export type ProfileLoader = () => Promise<LoadedProfile>;

export function profileLoader(args: { config?: string; profile?: string }, env: NodeJS.ProcessEnv): ProfileLoader {
  let loading: Promise<LoadedProfile> | undefined;
  return () =>
    (loading ??= (async () => {
      const file = await readConfigFile(args.config, env);
      const chosen = chooseProfile(file, args.profile, env);
      return { file, chosen, label: chosen.topLevel ? 'config file' : `profile ${chosen.name}` };
    })());
}

/** A flag's value as a setting (undefined when not given). */
export function fromFlag<T>(value: T | undefined, flag: string): Setting<T> | undefined {
  return value === undefined ? undefined : { value, origin: 'flag', from: `--${flag}` };
}

/** An environment variable as a setting (undefined when unset or empty). */
export function fromEnv(env: NodeJS.ProcessEnv, name: string): Setting | undefined {
  const value = envValue(env, name);
  return value === undefined ? undefined : { value, origin: 'env', from: name };
}

/** A key of the chosen profile as a setting (undefined when the profile does not set it). */
export function fromProfile(profile: LoadedProfile, key: keyof ProfileSettings): Setting | undefined {
  const value = profile.chosen.settings[key];
  return value === undefined ? undefined : { value, origin: 'profile', from: profile.label };
}

/** The first of `candidates` that is set (they are given strongest first), else `fallback`. */
export function firstSet<T>(candidates: (Setting<T> | undefined)[], fallback: Setting<T>): Setting<T> {
  return candidates.find((c) => c !== undefined) ?? fallback;
}

/** The environment variable that sets `--cache-proxy` for every mount, view and download. */
export const CACHE_PROXY_ENV = 'SLICEFS_CACHE_PROXY';

/**
 * The shared cache tier: `--cache-proxy` > `SLICEFS_CACHE_PROXY` > the profile's `cacheProxy` >
 * none. `--no-cache-proxy` (false, or '') is a choice too: it keeps the environment's and the
 * file's tier off. The value is checked later, by transportConfig (./common.ts).
 */
export async function cacheProxySetting(flag: string | false | undefined, env: NodeJS.ProcessEnv, profile: ProfileLoader): Promise<Setting<string | false>> {
  const given = fromFlag(flag, 'cache-proxy') ?? fromEnv(env, CACHE_PROXY_ENV);
  return given ?? fromProfile(await profile(), 'cacheProxy') ?? { origin: 'default', from: 'none' };
}
