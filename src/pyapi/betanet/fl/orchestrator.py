"""The asyncio FL orchestrator (docs/fl.md, "Orchestrator"): the coordinator service
(``coordinator``) and participant clients (``participant``) that run SecAgg+ rounds over
``transport`` channels, and what a round is (``rounds``). This module keeps their names
importable from one place.
"""
from __future__ import annotations

from betanet.fl.coordinator import CoordinatorService
from betanet.fl.participant import ParticipantClient, Trainer
from betanet.fl.rounds import RoundPlan, RoundResult, quantisation_levels

__all__ = ["RoundPlan", "RoundResult", "CoordinatorService", "ParticipantClient", "Trainer",
           "quantisation_levels"]
