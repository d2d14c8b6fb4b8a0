/**
 * The provider page's logic that runs without a browser: prices typed in token units parsed to exact base
 * units, a plan's bonus computed from bigints, and the usage chart's series per model and day.
 */
import { expect } from "chai";
import type { ModelDayUsage } from "../../client";
import { formatBonus } from "../../app/src/lib/plan-bonus";
import { parsePrices, priceTextsOf } from "../../app/src/views/provider/price-texts";
import { servedByModelAndDay } from "../../app/src/views/provider/usage-series";

const token = { symbol: "tUSD", decimals: 6 };

describe("provider page logic", function () {
  it("prices are exact base units per million tokens; zero is a price; too many decimals or text is refused per field", function () {
    expect(parsePrices({ input: "1,234.5", cachedInput: "0", output: "0.000001" }, token)).to.deep.equal({ prices: { input: 1_234_500_000n, cachedInput: 0n, output: 1n }, errors: {} });
    const refused = parsePrices({ input: "0.0000001", cachedInput: "abc", output: "2" }, token);
    expect(refused.prices).to.equal(undefined);
    expect(refused.errors.input).to.match(/at most 6 digits/);
    expect(refused.errors.cachedInput).to.match(/Enter a number/);
    expect(refused.errors.output).to.equal(undefined);
  });

  it("a model's current prices prefill the price-change form as they parse back", function () {
    const prices = { input: 1_500_000_000_000n, cachedInput: 75_000n, output: 1n };
    const texts = priceTextsOf(prices, token);
    expect(texts).to.deep.equal({ input: "1500000", cachedInput: "0.075", output: "0.000001" });
    expect(parsePrices(texts, token).prices).to.deep.equal(prices);
  });

  it("a plan's bonus is exact to 0.01 % and says when a credit is worth less than it costs", function () {
    expect(formatBonus(8n, 10n)).to.equal("+25%");
    expect(formatBonus(9_000n, 10_000n)).to.equal("+11.11%");
    expect(formatBonus(10n, 9n)).to.equal("−10%");
    expect(formatBonus(5n, 5n)).to.equal("0%");
    expect(formatBonus(0n, 5n)).to.equal("free credits");
    // Truncated toward zero, never rounded up: 33.333...% is +33.33%.
    expect(formatBonus(3n, 4n)).to.equal("+33.33%");
    expect(formatBonus(10_000n, 9_999n)).to.equal("−0.01%");
  });

  it("the chart has one bar per day in order and one series per model, zero where a model served nothing that day", function () {
    const row = (day: string, modelId: number, inputTokens: bigint, outputTokens: bigint, cost: bigint): ModelDayUsage => ({ day, modelId, providerId: 1, name: `m${modelId}`, records: 1, inputTokens, cachedInputTokens: 0n, outputTokens, cost });
    const usage = [row("2026-12-05", 2, 10n, 5n, 700n), row("2026-12-06", 1, 100n, 20n, 30n), row("2026-12-05", 1, 1n, 2n, 3n)];
    expect(servedByModelAndDay(usage, "tokens")).to.deep.equal({
      labels: ["2026-12-05", "2026-12-06"],
      series: [
        { name: "m1", values: [3n, 120n] },
        { name: "m2", values: [15n, 0n] },
      ],
    });
    expect(servedByModelAndDay(usage, "value").series.map((entry) => entry.values)).to.deep.equal([
      [3n, 30n],
      [700n, 0n],
    ]);
  });
});
