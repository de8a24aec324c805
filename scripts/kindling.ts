/**
 * Kindling's operator CLI: jobs, status, cancel, pause, resume, retry, rerun --from, log [--follow],
 * manifest. `npm run kindling -- --help` lists them; the logic is in scripts/kindling/cli.ts.
 */
import { runKindling } from "./kindling/cli.ts";

const code = await runKindling(process.argv.slice(2), {
  fetch,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
process.exitCode = code;
