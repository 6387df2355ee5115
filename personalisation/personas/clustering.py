"""Clustering contacts' behaviour into personas, describing each in words, and approximating each
with a segment rule tree. Pure: numbers in, numbers and words out (no database).

- Features (`matrix`): log days since last seen, log orders, log revenue, log product views,
  email open rate, log clicks (email links and pushes), and the share of each top category in
  what the contact viewed and bought (a purchase weighs BOUGHT_WEIGHT views). Standardised, so
  no unit dominates.
- k-means (scikit-learn) with a fixed random_state, so the same contacts give the same personas:
  KMeans up to FULL_KMEANS_MAX rows, MiniBatchKMeans above. k is the marketer's, or the one of
  K_CHOICES with the best silhouette (measured on at most SILHOUETTE_SAMPLE rows).
- Words (`describe`): each cluster's medians against the whole sample's ("high-value, infrequent
  buyers of tents", "new visitors who browse but never bought", "email-engaged regulars").
- Rules (`approximate`): a shallow decision tree learns "in this cluster or not" from the
  figures a segment condition can test (days since last seen, orders count, total spent, views
  of a category, opens and clicks); the leaves that are mostly the cluster become an "any" group
  of "all" groups. Its capture (how much of the cluster it selects) and spill (how many others
  it adds) are measured on the sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from personalisation.personas.features import (
    BEHAVIOUR_DAYS,
    EMAIL_CLICKED,
    EMAIL_OPENED,
    EMAIL_SENT,
    NEVER_SEEN_DAYS,
    PRODUCT_VIEWED,
    PUSH_CLICKED,
    Behaviour,
)

RANDOM_STATE = 16
K_CHOICES = range(3, 7)
K_MAX = 8  # what a marketer may ask for
FULL_KMEANS_MAX = 10_000
CHOOSE_ON = 10_000  # rows the choice of k is made on
SILHOUETTE_SAMPLE = 4_000
TOP_CATEGORIES = 6
BOUGHT_WEIGHT = 3
RECENCY_CAP = 730  # days: "never seen" counts as two years, not as 274 years
TREE_DEPTH = 3


def matrix(behaviours: Sequence[Behaviour], categories: Sequence[str]) -> np.ndarray:
    """The standardised feature matrix, one row per contact."""
    rows = []
    for b in behaviours:
        weight = {c: b.views[c] + BOUGHT_WEIGHT * b.bought[c] for c in set(b.views) | set(b.bought)}
        total = sum(weight.values())
        shares = [weight.get(c, 0) / total if total else 0.0 for c in categories]
        rows.append(
            [
                math.log1p(min(b.recency_days, RECENCY_CAP)),
                math.log1p(b.orders),
                math.log1p(b.revenue),
                math.log1p(b.views_total),
                b.open_rate,
                math.log1p(b.clicks),
                *shares,
            ]
        )
    data = np.asarray(rows, dtype=float)
    scaled: np.ndarray = StandardScaler().fit_transform(data)
    return scaled


def _model(k: int, n: int) -> KMeans | MiniBatchKMeans:
    if n <= FULL_KMEANS_MAX:
        return KMeans(n_clusters=k, n_init=4, random_state=RANDOM_STATE)
    return MiniBatchKMeans(n_clusters=k, batch_size=2048, n_init=3, random_state=RANDOM_STATE)


@dataclass
class Fit:
    k: int
    labels: np.ndarray
    silhouette: float | None
    tried: dict[int, float]  # k → silhouette, for the record


def cluster(data: np.ndarray, *, k: int | None) -> Fit:
    """Labels for each row: with `k` clusters, or the k of K_CHOICES with the best silhouette.
    k is chosen on at most CHOOSE_ON rows (drawn with RANDOM_STATE); the chosen model is then
    fitted on every row. Needs more distinct rows than clusters (the caller checks)."""
    n = len(data)
    distinct = len(np.unique(data, axis=0))
    choices = [k] if k else [c for c in K_CHOICES if c < distinct] or [2]
    tried: dict[int, float] = {}
    if len(choices) > 1:
        rows = data
        if n > CHOOSE_ON:
            pick = np.random.default_rng(RANDOM_STATE).choice(n, CHOOSE_ON, replace=False)
            rows = data[np.sort(pick)]
        for c in choices:
            tried[c] = _silhouette(rows, _model(c, len(rows)).fit_predict(rows))
        chosen = max(choices, key=lambda c: (tried[c], -c))
    else:
        chosen = choices[0]
    labels = _model(chosen, n).fit_predict(data)
    score = _silhouette(data, labels)
    tried[chosen] = score
    return Fit(k=chosen, labels=labels, silhouette=score, tried=tried)


def _silhouette(data: np.ndarray, labels: np.ndarray) -> float:
    if len(set(labels.tolist())) < 2:
        return -1.0
    score = silhouette_score(
        data, labels, sample_size=min(len(data), SILHOUETTE_SAMPLE), random_state=RANDOM_STATE
    )
    return round(float(score), 4)


# --- figures and words -------------------------------------------------------------------------


def _share(values: Sequence[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def figures(members: Sequence[Behaviour], categories: Sequence[str]) -> dict[str, Any]:
    """The figures shown beside a persona (medians, so a few big spenders do not skew them)."""
    seen = [min(b.recency_days, RECENCY_CAP) for b in members if b.recency_days < NEVER_SEEN_DAYS]
    weights: dict[str, float] = {}
    for b in members:
        for c in set(b.views) | set(b.bought):
            weights[c] = weights.get(c, 0.0) + b.views[c] + BOUGHT_WEIGHT * b.bought[c]
    total = sum(weights.values())
    top = max(weights, key=lambda c: (weights[c], c)) if weights else ""
    mailed = [b for b in members if b.events[EMAIL_SENT]]
    return {
        "recency_days": median(seen) if seen else None,
        "never_seen": _share([b.recency_days >= NEVER_SEEN_DAYS for b in members]),
        "age_days": median(b.age_days for b in members),
        "orders": median(b.orders for b in members),
        "buyers": _share([b.orders > 0 for b in members]),
        "revenue": round(median(b.revenue for b in members), 2),
        "revenue_buyers": round(median(b.revenue for b in members if b.orders) or 0, 2)
        if any(b.orders for b in members)
        else 0.0,
        "views": median(b.views_total for b in members),
        "top_category": top,
        "top_category_share": round(weights[top] / total, 3) if top else 0.0,
        "open_rate": round(median(b.open_rate for b in mailed), 3) if mailed else None,
        "mailed": _share([bool(b.events[EMAIL_SENT]) for b in members]),
        "clicks": median(b.clicks for b in members),
        "push_clicks": median(b.events[PUSH_CLICKED] for b in members),
    }


def _quantile(values: Sequence[float], q: float) -> float:
    return float(np.quantile(np.asarray(values, dtype=float), q)) if values else 0.0


@dataclass
class Baseline:
    """The whole sample's yardsticks the words compare a persona with."""

    revenue_high: float  # buyers' revenue, 75th percentile
    revenue_low: float  # 25th percentile
    orders_high: float

    @classmethod
    def of(cls, behaviours: Sequence[Behaviour]) -> Baseline:
        buyers = [b for b in behaviours if b.orders]
        return cls(
            revenue_high=_quantile([b.revenue for b in buyers], 0.75),
            revenue_low=_quantile([b.revenue for b in buyers], 0.25),
            orders_high=max(3.0, _quantile([b.orders for b in buyers], 0.75)),
        )


def describe(f: dict[str, Any], baseline: Baseline) -> str:
    """A persona in the words a marketer uses."""
    recency = f["recency_days"]
    recent = recency is not None and recency <= 30 and f["never_seen"] < 0.5
    lapsed = recency is None or recency > 90 or f["never_seen"] >= 0.5
    engaged = f["open_rate"] is not None and f["open_rate"] >= 0.35 and f["mailed"] >= 0.5
    clicks_push = f["push_clicks"] >= 1
    category = (
        f" of {f['top_category']}" if f["top_category"] and f["top_category_share"] >= 0.4 else ""
    )
    channel = [w for w, on in (("email-engaged", engaged), ("push-responsive", clicks_push)) if on]
    if f["buyers"] < 0.5:  # mostly never bought
        lead = " ".join([", ".join(channel)] if channel else [])
        if f["never_seen"] >= 0.5 and f["views"] == 0:
            words = "contacts never seen on the site"
        elif f["views"] == 0:
            words = "contacts with no recent browsing who never bought"
            if not lapsed:
                words = "visitors who never bought"
        else:
            who = (
                "new visitors"
                if f["age_days"] <= 30
                else ("lapsed visitors" if lapsed else "visitors")
            )
            browsed = f" {f['top_category']}" if category else ""
            words = f"{who} who browse{browsed} but never bought"
        return f"{lead} {words}".strip()
    value = f["revenue_buyers"]
    adjectives = list(channel)
    if value >= baseline.revenue_high and baseline.revenue_high > 0:
        adjectives.append("high-value")
    elif value <= baseline.revenue_low:
        adjectives.append("low-value")
    frequent = f["orders"] >= baseline.orders_high
    if frequent and recent:
        noun = "regulars"
        if category:
            category = f" who favour {f['top_category']}"
    else:
        if lapsed:
            adjectives.append("lapsed")
        elif recent and f["age_days"] <= 30:
            adjectives.append("new")
        if frequent:
            adjectives.append("frequent")
        else:
            adjectives.append("one-time" if f["orders"] <= 1 else "infrequent")
        noun = "buyers"
    return f"{', '.join(adjectives)} {noun}{category}".strip()


def summary(f: dict[str, Any]) -> str:
    """The figures in one sentence."""
    parts = []
    if f["recency_days"] is not None:
        parts.append(f"last seen {round(f['recency_days'])} days ago (median)")
    else:
        parts.append("never seen on the site")
    parts.append(f"{round(f['buyers'] * 100)}% have ordered")
    if f["buyers"]:
        parts.append(f"median {f['orders']:g} orders, {f['revenue']:g} spent")
    if f["top_category"]:
        parts.append(f"most interested in {f['top_category']}")
    if f["open_rate"] is not None:
        parts.append(f"opens {round(f['open_rate'] * 100)}% of emails")
    return "; ".join(parts) + "."


def unique_labels(labels: list[str]) -> list[str]:
    """Two personas described alike are told apart by a number."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


# --- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFeature:
    """A figure a segment condition tests: its name, and how to read it off a contact."""

    key: str
    kind: str  # recency | orders | spent | event
    event: str = ""
    category: str = ""

    def value(self, b: Behaviour) -> float:
        if self.kind == "recency":
            return float(b.recency_days)
        if self.kind == "orders":
            return float(b.orders)
        if self.kind == "spent":
            return b.revenue
        if self.category:
            return float(b.views[self.category])
        return float(b.events[self.event])


def rule_features(categories: Sequence[str]) -> list[RuleFeature]:
    return [
        RuleFeature("recency", "recency"),
        RuleFeature("orders", "orders"),
        RuleFeature("spent", "spent"),
        *(RuleFeature(f"views:{c}", "event", PRODUCT_VIEWED, c) for c in categories),
        RuleFeature("opens", "event", EMAIL_OPENED),
        RuleFeature("email_clicks", "event", EMAIL_CLICKED),
        RuleFeature("push_clicks", "event", PUSH_CLICKED),
    ]


def _condition(feature: RuleFeature, above: bool, threshold: float) -> dict[str, Any]:
    """One segment condition: the feature > threshold (above) or ≤ threshold."""
    if feature.kind == "recency":
        if threshold >= NEVER_SEEN_DAYS / 2:  # the split is "never seen" against "seen"
            op = "not_exists" if above else "exists"
            return {"type": "attribute", "field": "last_seen_at", "operator": op}
        days = math.floor(threshold) + 1  # whole days ≤ t  ⇔  seen within t + 1 days
        if not above:
            return {
                "type": "attribute",
                "field": "last_seen_at",
                "operator": "within_last_days",
                "value": days,
            }
        return {
            "type": "group",
            "match": "any",
            "negate": False,
            "children": [
                {
                    "type": "attribute",
                    "field": "last_seen_at",
                    "operator": "more_than_days_ago",
                    "value": days,
                },
                {"type": "attribute", "field": "last_seen_at", "operator": "not_exists"},
            ],
        }
    if feature.kind in ("orders", "spent"):
        metric = "orders_count" if feature.kind == "orders" else "total_spent"
        if feature.kind == "orders":
            whole = math.floor(threshold)
            value: float = whole + 1 if above else whole
            op = "gte" if above else "lte"
        else:
            value, op = round(threshold, 2), ("gt" if above else "lte")
        return {"type": "metric", "metric": metric, "operator": op, "value": value}
    whole = math.floor(threshold)
    node: dict[str, Any] = {
        "type": "event",
        "event": feature.event,
        "did": True,
        "where": [],
        "count": {"operator": "at_least", "value": whole + 1}
        if above
        else {"operator": "at_most", "value": whole},
        "window": {"last_days": BEHAVIOUR_DAYS},
    }
    if feature.category:
        node["where"] = [{"property": "category", "operator": "equals", "value": feature.category}]
    return node


EVERYONE = {"type": "attribute", "field": "created_at", "operator": "exists"}


@dataclass
class Approximation:
    rules: dict[str, Any]
    selected: np.ndarray  # bool per sample row: what the rules select
    captured: int  # cluster rows selected
    spill: int  # other rows selected


def rule_matrix(behaviours: Sequence[Behaviour], features: Sequence[RuleFeature]) -> np.ndarray:
    """The figures the rules test, one row per contact (made once, shared by every persona)."""
    return np.asarray([[f.value(b) for f in features] for b in behaviours], dtype=float)


def approximate(
    data: np.ndarray, in_cluster: np.ndarray, features: Sequence[RuleFeature]
) -> Approximation:
    """A rule tree selecting mostly the cluster's contacts (see the module's docstring); `data`
    is `rule_matrix` of the sample."""
    n = len(data)
    tree = DecisionTreeClassifier(
        max_depth=TREE_DEPTH,
        min_samples_leaf=max(2, n // 200),
        class_weight="balanced",
        random_state=RANDOM_STATE,
    ).fit(data, in_cluster)
    t = tree.tree_
    leaves = tree.apply(data)
    paths: dict[int, list[tuple[int, bool, float]]] = {}

    def walk(node: int, path: list[tuple[int, bool, float]]) -> None:
        if t.children_left[node] == -1:
            paths[node] = path
            return
        f, thr = int(t.feature[node]), float(t.threshold[node])
        walk(int(t.children_left[node]), [*path, (f, False, thr)])
        walk(int(t.children_right[node]), [*path, (f, True, thr)])

    walk(0, [])
    precision = {}
    for leaf in paths:
        rows = leaves == leaf
        if rows.any():
            precision[leaf] = float(in_cluster[rows].mean())
    chosen = [leaf for leaf, p in precision.items() if p >= 0.5]
    if not chosen:
        chosen = [max(precision, key=lambda leaf: precision[leaf])]
    groups = []
    for leaf in sorted(chosen, key=lambda leaf: -int((leaves == leaf).sum())):
        tightest: dict[tuple[int, bool], float] = {}
        for f, above, thr in paths[leaf]:
            key = (f, above)
            if key not in tightest:
                tightest[key] = thr
            else:  # the narrower of two splits on one figure
                tightest[key] = max(tightest[key], thr) if above else min(tightest[key], thr)
        conditions = [
            _condition(features[f], above, thr) for (f, above), thr in sorted(tightest.items())
        ]
        # A leaf without a split (the tree found nothing to split on) is everyone.
        groups.append(conditions or [EVERYONE])
    if len(groups) == 1 and groups[0]:
        rules = {"type": "group", "match": "all", "negate": False, "children": groups[0]}
    else:
        rules = {
            "type": "group",
            "match": "any",
            "negate": False,
            "children": [
                {"type": "group", "match": "all", "negate": False, "children": g} for g in groups
            ],
        }
    selected = np.isin(leaves, chosen)
    captured = int((selected & in_cluster).sum())
    spill = int((selected & ~in_cluster).sum())
    return Approximation(rules=rules, selected=selected, captured=captured, spill=spill)
