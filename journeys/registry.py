"""The node kinds and the graph shapes, for the apps above journeys that read journeys (analytics'
funnels walk a version's graph and label its steps and ports): journeys.node_kinds and
journeys.graph are journeys' own modules, this is their public face."""

from __future__ import annotations

from journeys.graph import Graph, GraphEdge, GraphNode
from journeys.node_kinds import NodeKind, get, is_registered, kinds

__all__ = ["Graph", "GraphEdge", "GraphNode", "NodeKind", "get", "is_registered", "kinds"]
