"""The journey map's flow diagram: a small two-column Sankey of contacts moving between lifecycle
stages over a period, as geometry the template draws as SVG (no chart library, no inline style:
presentation attributes and CSS classes only, for the CSP).

    flow_diagram(*, stages, transitions, period_words) -> FlowDiagram     pure

The left column is where contacts moved from (the stages in their order, plus "New contacts"
first when the period saw contacts get their first stage), the right one where they moved to.
Each band joins a from-stage to a to-stage, as thick as the contacts who made that move
(`stroke-width` on a curved path, the way d3-sankey draws links); each stage's bar is as tall as
the bands leaving or reaching it. A stage nobody left or reached still has its place, a thin bar
and "0", so the six stages always read in the same order. Every band has a <title> with its
figure; the same figures are the page's table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

NEW = ""  # a transition's "from" when a new contact got its first stage
NEW_LABEL = "New contacts"

WIDTH = 560
LABEL_ROOM = 140  # each side, for the stage's name and number
BAR = 12  # a stage's bar, wide
TOP = 34  # room for the columns' headings
FLOW_HEIGHT = 300  # the busier column's bars and bands, together, at most
SLOT = 38  # the least room a stage takes (its two lines of label)
GAP = 8
LEFT_X = LABEL_ROOM
RIGHT_X = WIDTH - LABEL_ROOM - BAR


@dataclass(frozen=True)
class FlowNode:
    side: str  # "from" or "to"
    key: str  # the stage ("" for new contacts)
    label: str
    count: int
    x: int
    y: float
    height: float
    text_x: int
    text_y: float  # the name's baseline; the number goes 15 below
    anchor: str  # text-anchor

    @property
    def css(self) -> str:
        return f"stage-{self.key or 'new'}"

    @property
    def number_y(self) -> float:
        return self.text_y + 15


@dataclass(frozen=True)
class FlowBand:
    source: str
    target: str
    source_label: str
    target_label: str
    count: int
    d: str  # the path
    width: float  # its stroke-width

    @property
    def css(self) -> str:
        return f"stage-{self.source or 'new'}"

    @property
    def title(self) -> str:
        return f"{self.source_label} → {self.target_label}: {self.count:,} contacts"


@dataclass(frozen=True)
class FlowDiagram:
    width: int
    height: int
    nodes: list[FlowNode] = field(default_factory=list)
    bands: list[FlowBand] = field(default_factory=list)
    title: str = ""
    desc: str = ""
    moved: int = 0
    left_heading_x: int = LEFT_X + BAR
    right_heading_x: int = RIGHT_X

    @property
    def empty(self) -> bool:
        return not self.bands


def _r(value: float) -> float:
    return round(value, 1)


def flow_diagram(
    *,
    stages: Sequence[tuple[str, str]],
    transitions: Sequence[tuple[str, str, int]],
    period_words: str = "",
) -> FlowDiagram:
    """The diagram of `transitions` ((from, to, contacts); from "" for a new contact) between
    `stages` ((key, label) in order). Moves to or from an unknown stage, from a stage to
    itself and zero counts are left out."""
    labels = dict(stages)
    order = {key: i for i, (key, _) in enumerate(stages)}
    moves = [
        (f, t, n)
        for f, t, n in transitions
        if n > 0 and t in labels and (f in labels or f == NEW) and f != t
    ]
    left_keys = ([NEW] if any(f == NEW for f, _, _ in moves) else []) + [k for k, _ in stages]
    right_keys = [k for k, _ in stages]
    labels_all = {NEW: NEW_LABEL, **labels}
    out = {k: sum(n for f, _, n in moves if f == k) for k in left_keys}
    into = {k: sum(n for _, t, n in moves if t == k) for k in right_keys}
    moved = sum(n for _, _, n in moves)
    scale = FLOW_HEIGHT / moved if moved else 0.0

    def column(keys: list[str], totals: dict[str, int], side: str) -> tuple[list[FlowNode], float]:
        nodes, y = [], float(TOP)
        for key in keys:
            height = max(totals[key] * scale, 2.0)
            slot = max(height, SLOT)
            left = side == "from"
            nodes.append(
                FlowNode(
                    side=side,
                    key=key,
                    label=labels_all[key],
                    count=totals[key],
                    x=LEFT_X if left else RIGHT_X,
                    y=_r(y),
                    height=_r(height),
                    text_x=LEFT_X - 8 if left else RIGHT_X + BAR + 8,
                    text_y=_r(y + slot / 2 - 3),
                    anchor="end" if left else "start",
                )
            )
            y += slot + GAP
        return nodes, y

    left, left_bottom = column(left_keys, out, "from")
    right, right_bottom = column(right_keys, into, "to")
    at_left = {n.key: n for n in left}
    at_right = {n.key: n for n in right}
    # Bands leave each from-stage in the to-stages' order and reach each to-stage in the
    # from-stages' order: bands cross as little as two columns allow.
    left_used = dict.fromkeys(left_keys, 0.0)
    right_used = dict.fromkeys(right_keys, 0.0)
    by_target = sorted(moves, key=lambda m: (-1 if m[0] == NEW else order[m[0]], order[m[1]]))
    start_y: dict[tuple[str, str], float] = {}
    for f, t, n in by_target:
        start_y[(f, t)] = at_left[f].y + left_used[f] + n * scale / 2
        left_used[f] += n * scale
    bands = []
    x0, x1 = LEFT_X + BAR, RIGHT_X
    mid = (x0 + x1) / 2
    by_source = sorted(moves, key=lambda m: (order[m[1]], -1 if m[0] == NEW else order[m[0]]))
    for f, t, n in by_source:
        y0 = start_y[(f, t)]
        y1 = at_right[t].y + right_used[t] + n * scale / 2
        right_used[t] += n * scale
        bands.append(
            FlowBand(
                source=f,
                target=t,
                source_label=labels_all[f],
                target_label=labels_all[t],
                count=n,
                d=f"M{x0} {_r(y0)} C{_r(mid)} {_r(y0)} {_r(mid)} {_r(y1)} {x1} {_r(y1)}",
                width=_r(max(n * scale, 1.0)),
            )
        )
    biggest = sorted(moves, key=lambda m: -m[2])[:5]
    desc = (
        f"{moved:,} stage changes{' ' + period_words if period_words else ''}. "
        + "; ".join(f"{labels_all[f]} to {labels_all[t]}: {n:,}" for f, t, n in biggest)
        + ("; and fewer between other stages." if len(moves) > len(biggest) else ".")
        if moves
        else f"No contact changed stage{' ' + period_words if period_words else ''}."
    )
    return FlowDiagram(
        width=WIDTH,
        height=int(max(left_bottom, right_bottom)) + 4,
        nodes=left + right,
        bands=bands,
        title="Contacts moving between lifecycle stages",
        desc=desc,
        moved=moved,
    )
