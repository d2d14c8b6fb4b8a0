/**
 * The wallet-signed messages that manage budgets, validated at the edge. Their EIP-712 types sit with the
 * other gateway messages in `api-keys/wallet-messages.ts`, so one domain and one signing path serve them all.
 *
 *   CreateBudget  scope "tag" (a key tag, e.g. "team:support") or "trace" (an x-tollgate-trace-id), target,
 *                 period "day" | "week" | "month" (UTC calendar periods, weeks from Monday), limit in token base
 *                 units per period, thresholdsBps (alerts; empty: 80% and 100%), webhookUrl ("" for none),
 *                 degradeThresholdBps + degradeModel (0 and "" for none; applied by budget-degrade.ts)
 *   ListBudgets   the buyer's live budgets
 *   DeleteBudget  one of them, by id
 */
import { z } from "zod";
import { BUDGET_PERIODS } from "../../store/budget-periods";
import { common, tag, uintString } from "../api-keys/wallet-messages";
import { TRACE_ID } from "../http/call-attribution";

export const DEFAULT_THRESHOLDS_BPS = [8_000, 10_000];
const MAX_UINT256 = 2n ** 256n - 1n;
const bps = z.union([z.number().int(), z.string().regex(/^\d{1,5}$/).transform(Number)]).pipe(z.number().int().min(0).max(10_000, "at most 10000 (100%)"));

export const createBudgetMessage = z
  .object({
    ...common,
    label: z.string().max(100),
    scope: z.enum(["tag", "trace"]),
    target: z.string().min(1).max(128),
    period: z.enum(BUDGET_PERIODS),
    limit: uintString.refine((value) => value > 0n && value <= MAX_UINT256, "a positive amount of token base units"),
    thresholdsBps: z.array(bps.refine((value) => value > 0, "thresholds are 1 to 10000 basis points")).max(8),
    webhookUrl: z.union([z.literal(""), z.url({ protocol: /^https?$/, error: "an http(s) URL, or empty for none" }).max(2048)]),
    degradeThresholdBps: bps,
    degradeModel: z.string().max(64),
  })
  .superRefine((message, ctx) => {
    if (message.scope === "tag" && !tag.safeParse(message.target).success) {
      ctx.addIssue({ code: "custom", path: ["target"], message: 'a tag budget names a key tag, like "team:support" or "workflow:triage"' });
    }
    if (message.scope === "trace" && !TRACE_ID.test(message.target)) {
      ctx.addIssue({ code: "custom", path: ["target"], message: "a trace budget names an x-tollgate-trace-id: 1 to 128 letters, digits or . _ : -" });
    }
    const sorted = [...new Set(message.thresholdsBps)].sort((a, b) => a - b);
    if (sorted.length !== message.thresholdsBps.length || sorted.some((value, i) => value !== message.thresholdsBps[i])) {
      ctx.addIssue({ code: "custom", path: ["thresholdsBps"], message: "thresholds must be ascending and distinct" });
    }
    if ((message.degradeModel === "") !== (message.degradeThresholdBps === 0)) {
      ctx.addIssue({ code: "custom", path: ["degradeModel"], message: "a degrade rule needs both degradeModel and degradeThresholdBps (1-10000), or neither" });
    }
  });
export const listBudgetsMessage = z.object(common);
export const deleteBudgetMessage = z.object({ ...common, budgetId: z.string().min(1).max(64) });

export type CreateBudgetMessage = z.infer<typeof createBudgetMessage>;
