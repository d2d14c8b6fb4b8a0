#!/usr/bin/env node
/**
 * `tollgate` as an installed command (package.json "bin"): compiles the TypeScript CLI on the fly with the
 * project's ts-node and tsconfig, resolved from this file rather than the working directory, so it runs
 * from anywhere (`npm link`, `npx tollgate` in the repository).
 */
const path = require("node:path");

require("ts-node").register({ transpileOnly: true, project: path.join(__dirname, "..", "tsconfig.json") });
require("../scripts/tollgate.ts");
