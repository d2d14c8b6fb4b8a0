/**
 * Tollgate over a freshly deployed TestUSD, for local chains. A file of its own because
 * `npx hardhat ignition deploy <file>` deploys the file's default export:
 *   npx hardhat ignition deploy ignition/modules/TollgateWithTestToken.ts --network localhost \
 *     --parameters ignition/parameters/local.json
 */
import { TollgateWithTestTokenModule } from "./Tollgate";

export default TollgateWithTestTokenModule;
