"""Exposure to campaigns (pushes carrying a campaign id) and coupon use."""

from __future__ import annotations

from churnkit.contracts import EVENT_NOUNS
from churnkit.features.context import Agg, Context, days_between, zero_if_null
from churnkit.features.families.windows import event_fact
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec, Wording
from churnkit.features.wording import ReasonRows, known, num, plural

F = "campaigns"


def _campaign_pushes(when: str) -> Wording:
    def wording(r: ReasonRows, i: int, lead: str) -> str:
        c = num(r.v(i, lead))
        return f"{c} campaign {plural(c, 'messages')} {when}" + r.typical(lead, num)

    return known(wording)


def _coupons_so_far(r: ReasonRows, i: int, lead: str) -> str:
    c = num(r.v(i, lead))
    return f"{c} {plural(c, EVENT_NOUNS['coupon_redeem'][1])} so far" + r.typical(lead, num)


def _aggregates(ctx: Context) -> dict[str, Agg]:
    return dict([ctx.wsum("n_campaign_push", 90), ctx.wsum("n_campaign_push"), ctx.wsum("n_coupon_redeem"),
                 ctx.wmax("last_campaign_ts")])


def family(options: FamilyOptions) -> Family:
    features = [
        (FeatureSpec("campaign_pushes_90d", "campaign messages received, last 90 days", "messages", F,
                     fact="campaign_pushes", wording=_campaign_pushes("in the last 90 days")),
         lambda t: zero_if_null(t.sum_n_campaign_push_90)),
        (FeatureSpec("campaign_pushes_total", "campaign messages received, all history", "messages", F,
                     fact="campaign_pushes", wording=_campaign_pushes("so far")),
         lambda t: zero_if_null(t.sum_n_campaign_push_all)),
        (FeatureSpec("coupon_redeems_total", "coupon redemptions, all history", "redemptions", F,
                     fact=event_fact("coupon_redeem"), wording=known(_coupons_so_far)),
         lambda t: zero_if_null(t.sum_n_coupon_redeem_all)),
        (FeatureSpec("days_since_last_campaign", "days since the last campaign message", "days", F),
         lambda t: days_between(t.cutoff, t.max_last_campaign_ts_all)),
    ]
    return Family(F, features, _aggregates)
