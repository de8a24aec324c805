import type { Config } from "../config";

/** What every route sees: the bindings and the parsed configuration. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    config: Config;
    fetch: typeof fetch;
  };
}
