/**
 * `tollgate keystore …`: make an encrypted JSON keystore (the standard Ethereum format, scrypt + AES-128-CTR,
 * readable by ethers, geth and Foundry's `cast wallet`) so no raw key has to sit in the environment, and show
 * the address of the key the CLI would sign with.
 */
import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { Wallet } from "ethers";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { ENV, envValue, examples, loadPrivateKey, type CliContext, type ContextFactory } from "./context";
import { CliError } from "./errors";

/** Short passwords fall to offline guessing however slow scrypt makes each guess. */
const MIN_PASSWORD_LENGTH = 8;

async function create(ctx: CliContext, file: string, options: { import?: boolean; force?: boolean }): Promise<void> {
  const password = ctx.io.env[ENV.keystorePassword];
  if (password === undefined || password === "") {
    throw new CliError(`${ENV.keystorePassword} is not set`, `export ${ENV.keystorePassword} with the password to encrypt the keystore with`);
  }
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new CliError(`${ENV.keystorePassword} is shorter than ${MIN_PASSWORD_LENGTH} characters`, "use a longer password (a passphrase of several words)");
  }
  let privateKey;
  if (options.import) {
    if (!envValue(ctx.io.env, ENV.privateKey)) {
      throw new CliError(`--import encrypts ${ENV.privateKey}, which is not set`, `export ${ENV.privateKey}, or leave out --import to generate a new key`);
    }
    privateKey = await loadPrivateKey({ [ENV.privateKey]: ctx.io.env[ENV.privateKey] });
  } else {
    privateKey = generatePrivateKey();
  }
  const target = path.resolve(file);
  const json = await new Wallet(privateKey).encrypt(password);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  try {
    // "wx" fails if the file exists: overwriting a keystore can destroy the only copy of a funded key.
    fs.writeFileSync(target, `${json}\n`, { mode: 0o600, flag: options.force ? "w" : "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new CliError(`${file} already exists`, "choose another file name, or pass --force to overwrite it (its key is lost unless backed up)");
    }
    throw error;
  }
  const address = privateKeyToAddress(privateKey);
  ctx.out.say(`wrote an encrypted keystore for ${address} to ${file}`);
  ctx.out.say(`use it with: export ${ENV.keystore}=${target} ${ENV.keystorePassword}=…`);
  if (!options.import) ctx.out.say("the key exists only in this file: back it up, and fund the address before sending transactions");
  ctx.out.result({ action: "keystore-create", address, file: target, imported: Boolean(options.import) });
}

async function address(ctx: CliContext): Promise<void> {
  const account = await ctx.signer();
  const source = envValue(ctx.io.env, ENV.keystore) ? `keystore ${ctx.io.env[ENV.keystore]}` : ENV.privateKey;
  ctx.out.say(`${account.address} (from ${source})`);
  ctx.out.result({ address: account.address, source });
}

export function registerKeystore(program: Command, context: ContextFactory): void {
  const keystore = program.command("keystore").description("encrypted key files, so no raw private key needs to be in the environment");

  keystore
    .command("create")
    .description(`generate a new key and write it as an encrypted JSON keystore (password from ${ENV.keystorePassword})`)
    .argument("<file>", "where to write the keystore")
    .option("--import", `encrypt the key in ${ENV.privateKey} instead of generating one`)
    .option("--force", "overwrite an existing file")
    .addHelpText("after", examples(`${ENV.keystorePassword}='correct horse battery staple' tollgate keystore create ~/.tollgate/buyer.json`))
    .action((file: string, options: { import?: boolean; force?: boolean }, cmd: Command) => create(context(cmd), file, options));

  keystore
    .command("address")
    .description(`the address of the key the CLI signs with (${ENV.privateKey} or ${ENV.keystore})`)
    .addHelpText("after", examples(`${ENV.keystore}=~/.tollgate/buyer.json ${ENV.keystorePassword}=… tollgate keystore address`))
    .action((_options: unknown, cmd: Command) => address(context(cmd)));
}
