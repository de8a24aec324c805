import type { Cache } from "../cache/kv";
import type { ReaderContext } from "../cache/reader";
import type { Config } from "../config";
import type { CircuitBreaker } from "../lib/breaker";
import type { ProviderBreakers } from "../sources";

/** What every route sees: the bindings, the parsed configuration and this request's cache. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    config: Config;
    cache: Cache;
    kvBreaker: CircuitBreaker;
    providerBreakers: ProviderBreakers;
    reader: ReaderContext;
  };
}
