/**
 * The keys and usage pages' logic that runs without a browser: the create-key form read as the gateway's
 * `CreateApiKey` message (the tag rule is the gateway's own schema: what the form accepts, the gateway
 * accepts), spend summed per day and group in base units, and the CSV's file name from its date range.
 */
import { expect } from "chai";
import { createApiKeyMessage } from "../../server/gateway/api-keys/wallet-messages";
import { parseKeyForm, splitTags } from "../../app/src/views/keys/key-form-values";
import { percent } from "../../app/src/lib/percent";
import { csvFileName } from "../../app/src/views/usage/csv-export";
import { dayOf, spendByDay } from "../../app/src/views/usage/spend-by-day";
import type { ShownUsageRow } from "../../app/src/views/usage/usage-rows";

const token = { symbol: "tUSD", decimals: 6 };
const NOW = 1_800_000_000;
const form = (fields: Partial<Parameters<typeof parseKeyForm>[0]>) => parseKeyForm({ label: "", spendCap: "", models: [], expiresAt: "", tags: "", ...fields }, token, NOW);

describe("keys and usage page logic", function () {
  it("an empty form is a key with no cap, every model, no expiry and no tags", function () {
    expect(form({})).to.deep.equal({ ok: true, value: { label: "", spendCap: undefined, models: [], tags: [], expiresAt: undefined } });
  });

  it("the spend cap is exact base units; a cap with more decimals than the token is refused", function () {
    const parsed = form({ spendCap: "1,234.567891" });
    expect(parsed.ok && parsed.value.spendCap).to.equal(1_234_567_891n);
    const refused = form({ spendCap: "0.0000001" });
    expect(refused.ok).to.equal(false);
    expect(!refused.ok && refused.errors.spendCap).to.match(/at most 6 digits/);
  });

  it("tags are accepted exactly when the gateway's schema accepts them", function () {
    const tagSchema = createApiKeyMessage.shape.tags.element;
    for (const tag of ["team:search", "workflow:nightly-report", "a.b:c/d", "team", ":x", "team: x", "x".repeat(62) + ":yz", "team:séance"]) {
      const parsed = form({ tags: tag });
      expect(parsed.ok, tag).to.equal(tagSchema.safeParse(tag).success);
    }
    expect(splitTags("team:a, team:b\nteam:a  team:c")).to.deep.equal(["team:a", "team:b", "team:c"]);
    const tooMany = form({ tags: Array.from({ length: 17 }, (_, i) => `t:${i}`).join(",") });
    expect(!tooMany.ok && tooMany.errors.tags).to.match(/at most 16 tags/);
  });

  it("an expiry in the past is refused; a future one is unix seconds", function () {
    const future = new Date((NOW + 3_600) * 1000);
    const local = `${future.getFullYear()}-${String(future.getMonth() + 1).padStart(2, "0")}-${String(future.getDate()).padStart(2, "0")}T${String(future.getHours()).padStart(2, "0")}:${String(future.getMinutes()).padStart(2, "0")}`;
    const parsed = form({ expiresAt: local });
    expect(parsed.ok && parsed.value.expiresAt).to.equal(BigInt(Math.floor(new Date(local).getTime() / 1000)));
    const past = form({ expiresAt: "2020-01-01T00:00" });
    expect(!past.ok && past.errors.expiresAt).to.match(/in the future/);
  });

  it("spend per day sums bigints per group; a call with two tags counts under both, one with none under (no tag)", function () {
    const base = NOW - (NOW % 86_400) + 43_200;
    const row = (served_at: number, model: string, key_id: string, tags: string[], cost: string) => ({ served_at, model, key_id, tags, cost }) as ShownUsageRow;
    const rows = [row(base, "small", "k1", ["team:a", "team:b"], "900000000000000000001"), row(base, "large", "k2", [], "5"), row(base + 86_400, "small", "k1", ["team:a"], "7")];
    const byModel = spendByDay(rows, "model", (id) => id);
    expect(byModel.labels).to.deep.equal([dayOf(base), dayOf(base + 86_400)]);
    expect(byModel.series).to.deep.equal([
      { name: "large", values: [5n, 0n] },
      { name: "small", values: [900000000000000000001n, 7n] },
    ]);
    const byTag = spendByDay(rows, "tag", (id) => id);
    expect(byTag.series).to.deep.equal([
      { name: "(no tag)", values: [5n, 0n] },
      { name: "team:a", values: [900000000000000000001n, 7n] },
      { name: "team:b", values: [900000000000000000001n, 0n] },
    ]);
    expect(spendByDay(rows, "key", (id) => `label ${id}`).series.map((s) => s.name)).to.deep.equal(["label k1", "label k2"]);
  });

  it("the CSV is named by the days its rows cover, or by the filters' days", function () {
    const csv = `sequence,served_at,model\n1,${NOW},a\n2,${NOW + 2 * 86_400},b\n`;
    expect(csvFileName(csv, {})).to.equal(`tollgate-usage_${dayOf(NOW)}_to_${dayOf(NOW + 2 * 86_400)}.csv`);
    expect(csvFileName("sequence,served_at\n", { from: NOW, to: NOW + 86_400 })).to.equal(`tollgate-usage_${dayOf(NOW)}_to_${dayOf(NOW)}.csv`);
    expect(csvFileName("sequence,served_at\n", {})).to.equal("tollgate-usage_start_to_now.csv");
  });

  it("shows the gateway's four-decimal shares as percentages by their digits", function () {
    expect(percent("0.1234")).to.equal("12.34%");
    expect(percent("0.5000")).to.equal("50%");
    expect(percent("0.0010")).to.equal("0.1%");
    expect(percent("1.0000")).to.equal("100%");
    expect(percent("0.0000")).to.equal("0%");
    expect(percent(null)).to.equal("—");
  });
});
