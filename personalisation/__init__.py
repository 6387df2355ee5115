"""Onsite personalisation, beside journeys and campaigns, on audience and segments (DESIGN §2).

Five Django apps, one layer of the design:

- `recommendations`: the recommendation API for browsers and servers, served/clicked events and
  the revenue they earn (the strategies themselves live beside the catalog, in audience, so
  that messages' Liquid uses the same ones);
- `search`: typo-tolerant, personalised product search, synonyms, zero-result queries;
- `placements`: dynamic content, variants of a page element targeted by segment and stage;
- `surveys`: NPS and short surveys, hosted and embedded, answers recorded as events;
- `personas`: k-means over contacts' behaviour, suggested as segments.

The tracker (static/js/tracker.js) is their browser side; docs/tracker.md and
docs/personalisation.md describe them.
"""
