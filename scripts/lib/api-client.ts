/**
 * The scripts' typed Kindling client: openapi-fetch over the paths generated from /openapi.json
 * (api-types.ts), so a request or answer that drifts from the API fails typecheck, not a run.
 */
import createClient from "openapi-fetch";
import type { paths } from "./api-types.ts";

export type KindlingClient = ReturnType<typeof kindlingClient>;

/** A client for the Kindling at `url` that sends `token` as its bearer token (through `fetch` if given). */
export function kindlingClient(url: string, token: string, fetch?: (request: Request) => Promise<Response>) {
  return createClient<paths>({
    baseUrl: url,
    headers: { Authorization: `Bearer ${token}` },
    ...(fetch ? { fetch } : {}),
  });
}
