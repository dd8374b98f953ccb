"""Who the users are: observable attributes and the latent traits that drive behaviour.

Traits depend on attributes (paid-search users churn faster, referrals stay longer, web
users visit less), so attributes carry real but partial signal, as they do in practice.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

REGIONS = np.array(["north_america", "europe", "asia_pacific", "latin_america"])
REGION_P = np.array([0.38, 0.32, 0.2, 0.1])
PLATFORMS = np.array(["ios", "android", "web"])
PLATFORM_P = np.array([0.4, 0.4, 0.2])
ACQUISITION = np.array(["organic", "paid_search", "paid_social", "referral", "email"])
ACQUISITION_P = np.array([0.35, 0.22, 0.2, 0.13, 0.1])
AGE_BANDS = np.array(["18-24", "25-34", "35-44", "45-54", "55+"])
AGE_P = np.array([0.18, 0.32, 0.24, 0.15, 0.11])
CATEGORIES = np.array(["books", "electronics", "fashion", "home", "beauty", "sports"])
RESPONSE_TYPES = np.array(["persuadable", "unaffected", "put_off"])
RESPONSE_P = np.array([0.45, 0.48, 0.07])

SPEND_SIGMA = 0.45
"""Log-scale spread of one purchase's amount around the user's spend level."""


@dataclass(frozen=True)
class Population:
    """Per-user arrays (length n). ``signup_day`` is relative to the start; < 0 = existing base."""

    user_ids: np.ndarray
    signup_day: np.ndarray
    signup_sec: np.ndarray
    region: np.ndarray
    platform: np.ndarray
    acquisition: np.ndarray
    age_band: np.ndarray
    push_opt_in: np.ndarray
    # latent traits
    session_rate: np.ndarray
    """Expected sessions per day when fully engaged."""
    checkin_rate: np.ndarray
    ticket_rate: np.ndarray
    push_open: np.ndarray
    """Probability of opening a push when fully engaged."""
    cart_prob: np.ndarray
    buy_prob: np.ndarray
    """Probability that a session ends in a purchase."""
    spend_mu: np.ndarray
    """Log-scale mean of purchase amounts."""
    churn_hazard: np.ndarray
    """Baseline daily probability of starting to disengage."""
    decay_tau: np.ndarray
    """Days for engagement to fall by 1/e once disengaging."""
    recover_prob: np.ndarray
    comeback_prob: np.ndarray
    price_sensitivity: np.ndarray
    coupon_lift: np.ndarray
    """Purchase-probability multiplier while a coupon is valid."""
    response_type: np.ndarray
    save_push: np.ndarray
    save_coupon: np.ndarray
    winback: np.ndarray
    annoy: np.ndarray
    category_cdf: np.ndarray
    """(n, n_categories) cumulative category preference."""
    app_share: np.ndarray
    """Share of sessions in the app rather than on the web."""

    @property
    def n(self) -> int:
        return len(self.user_ids)

    def subset(self, idx: np.ndarray) -> Population:
        return Population(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def users_frame(self, start: np.datetime64) -> pd.DataFrame:
        """The observable users table (what a product database would hold)."""
        signup = start + self.signup_day.astype("timedelta64[D]") + self.signup_sec.astype("timedelta64[s]")
        return pd.DataFrame(
            {
                "user_id": self.user_ids,
                "signup_ts": pd.to_datetime(signup).tz_localize("UTC"),
                "region": self.region,
                "platform": self.platform,
                "acquisition_channel": self.acquisition,
                "age_band": self.age_band,
                "push_opt_in": self.push_opt_in,
            }
        )

    def traits_frame(self) -> pd.DataFrame:
        """The latent traits: truth that no model sees."""
        prefs = np.diff(self.category_cdf, axis=1, prepend=0.0)
        df = pd.DataFrame(
            {
                "user_id": self.user_ids,
                "session_rate": self.session_rate,
                "checkin_rate": self.checkin_rate,
                "ticket_rate": self.ticket_rate,
                "push_open_rate": self.push_open,
                "cart_prob": self.cart_prob,
                "purchase_prob_per_session": self.buy_prob,
                "spend_level": np.exp(self.spend_mu + SPEND_SIGMA**2 / 2),
                "churn_hazard": self.churn_hazard,
                "decay_days": self.decay_tau,
                "recover_prob": self.recover_prob,
                "comeback_prob": self.comeback_prob,
                "price_sensitivity": self.price_sensitivity,
                "coupon_lift": self.coupon_lift,
                "campaign_response": self.response_type,
                "save_prob_push": self.save_push,
                "save_prob_coupon": self.save_coupon,
                "winback_prob": self.winback,
                "put_off_prob": self.annoy,
                "app_share": self.app_share,
            }
        )
        for j, cat in enumerate(CATEGORIES):
            df[f"pref_{cat}"] = prefs[:, j]
        return df


def _pick(rng: np.random.Generator, values: np.ndarray, p: np.ndarray, n: int) -> np.ndarray:
    return values[rng.choice(len(values), size=n, p=p)]


def draw_population(rng: np.random.Generator, n: int, days: int, prestart_share: float) -> Population:
    """Draw n users; signups spread over the period, part of the base signed up earlier."""
    width = len(str(n))
    user_ids = np.array([f"u{i:0{max(width, 6)}d}" for i in range(1, n + 1)])
    prestart = rng.random(n) < prestart_share
    signup_day = np.where(prestart, -rng.integers(1, 731, n), rng.integers(0, days, n))
    signup_sec = rng.integers(0, 72_000, n)

    region = _pick(rng, REGIONS, REGION_P, n)
    platform = _pick(rng, PLATFORMS, PLATFORM_P, n)
    acquisition = _pick(rng, ACQUISITION, ACQUISITION_P, n)
    age_band = _pick(rng, AGE_BANDS, AGE_P, n)
    opt_in_p = np.select([platform == "ios", platform == "android"], [0.55, 0.8], 0.35)
    push_opt_in = rng.random(n) < opt_in_p

    acq_activity = {"organic": 1.1, "paid_search": 0.85, "paid_social": 0.8, "referral": 1.25, "email": 1.0}
    acq_hazard = {"organic": 0.9, "paid_search": 1.6, "paid_social": 1.4, "referral": 0.6, "email": 1.0}
    age_hazard = {"18-24": 1.35, "25-34": 1.1, "35-44": 0.9, "45-54": 0.8, "55+": 0.75}
    region_spend = {"north_america": 0.15, "europe": 0.05, "asia_pacific": -0.05, "latin_america": -0.3}

    silent = rng.random(n) < 0.2  # rarely-visiting users: alive but quiet for long stretches
    session_rate = (
        np.exp(rng.normal(np.log(0.22), 0.7, n))
        * np.vectorize(acq_activity.get)(acquisition)
        * np.where(platform == "web", 0.7, 1.0)
        * np.where(silent, 0.12, 1.0)
    )
    session_rate = np.minimum(session_rate, 4.0)
    uses_checkin = (platform != "web") & (rng.random(n) < 0.3)
    checkin_rate = np.where(uses_checkin, rng.uniform(0.2, 0.7, n), 0.0)
    ticket_rate = rng.uniform(0.0005, 0.003, n)
    push_open = rng.beta(2.0, 6.0, n)
    cart_prob = rng.beta(2.0, 8.0, n)
    buy_prob = np.clip(rng.beta(2.0, 22.0, n) * np.where(np.isin(age_band, ["35-44", "45-54"]), 1.2, 1.0), 0, 0.9)
    spend_mu = rng.normal(np.log(32.0), 0.45, n) + np.vectorize(region_spend.get)(region)
    churn_hazard = (
        np.exp(rng.normal(np.log(0.006), 0.6, n))
        * np.vectorize(acq_hazard.get)(acquisition)
        * np.vectorize(age_hazard.get)(age_band)
    )
    decay_tau = rng.uniform(3.0, 9.0, n)
    recover_prob = rng.uniform(0.0, 0.04, n)
    comeback_prob = np.exp(rng.normal(np.log(0.0008), 0.5, n))
    price_sensitivity = rng.beta(2.0, 4.0, n)
    coupon_lift = 1.0 + 2.0 * price_sensitivity

    response_type = _pick(rng, RESPONSE_TYPES, RESPONSE_P, n)
    persuadable = response_type == "persuadable"
    save_push = np.where(persuadable, rng.beta(2.0, 5.0, n), 0.0)
    save_coupon = np.where(persuadable, np.minimum(0.9, save_push + 0.5 * price_sensitivity), 0.0)
    winback = 0.3 * save_coupon
    annoy = np.where(response_type == "put_off", rng.uniform(0.05, 0.3, n), 0.0)

    prefs = rng.dirichlet(np.full(len(CATEGORIES), 0.6), n)
    category_cdf = np.cumsum(prefs, axis=1)
    category_cdf[:, -1] = 1.0
    app_share = np.select([platform == "web"], [0.1], 0.85)

    return Population(
        user_ids=user_ids,
        signup_day=signup_day.astype(np.int64),
        signup_sec=signup_sec.astype(np.int64),
        region=region,
        platform=platform,
        acquisition=acquisition,
        age_band=age_band,
        push_opt_in=push_opt_in,
        session_rate=session_rate,
        checkin_rate=checkin_rate,
        ticket_rate=ticket_rate,
        push_open=push_open,
        cart_prob=cart_prob,
        buy_prob=buy_prob,
        spend_mu=spend_mu,
        churn_hazard=churn_hazard,
        decay_tau=decay_tau,
        recover_prob=recover_prob,
        comeback_prob=comeback_prob,
        price_sensitivity=price_sensitivity,
        coupon_lift=coupon_lift,
        response_type=response_type,
        save_push=save_push,
        save_coupon=save_coupon,
        winback=winback,
        annoy=annoy,
        category_cdf=category_cdf,
        app_share=app_share,
    )
