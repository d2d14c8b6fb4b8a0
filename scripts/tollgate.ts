/**
 * The `tollgate` command line for buyers, providers and operators (implementation in scripts/cli/).
 *
 *   npx ts-node --transpile-only scripts/tollgate.ts --help
 *   npm run tollgate -- buyer balance
 */
import { runCli } from "./cli";

runCli(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr }).then(
  (code) => {
    // exitCode rather than exit(): lets stdout drain when it is a pipe.
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`tollgate: unexpected failure: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
