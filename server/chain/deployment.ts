/**
 * The deployment file: the deploy step writes it; the gateway, the oracle and the command line read it, so
 * no address is ever hard-coded. This is the Node side (the file system); what a deployment is and how it
 * is parsed lives in the browser-safe `deployment-schema.ts`, re-exported here for Node callers.
 */
import fs from "node:fs";
import path from "node:path";
import { DeploymentFileError, parseDeployment, type Deployment } from "./deployment-schema";

export { deploymentSchema, DeploymentFileError, parseDeployment, type Deployment } from "./deployment-schema";

export function readDeploymentFile(file: string): Deployment {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new DeploymentFileError(
      `cannot read the deployment file ${file}: ${(error as Error).message}\n` +
        `  (deploy first: \`npm run deploy -- --network <name>\` or \`npx tollgate operator deploy\`)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new DeploymentFileError(`the deployment file ${file} is not valid JSON: ${(error as Error).message}`);
  }
  return parseDeployment(raw, file);
}

export function writeDeploymentFile(file: string, deployment: Deployment): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(deployment, null, 2) + "\n");
}
