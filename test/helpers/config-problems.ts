/**
 * For configuration tests: runs a parse that must fail and returns its ConfigError's message (every problem listed),
 * failing the test if it throws anything else or nothing.
 */
import { expect } from "chai";
import { ConfigError } from "../../server/config";

export function configProblems(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a ConfigError");
}
