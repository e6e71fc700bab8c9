"""Federated learning over Betanet: secure aggregation (SecAgg+), differential privacy with
an exact RDP accountant and a persistent budget (docs/fl.md).

Submodules: ``shamir`` (secret sharing), ``secagg`` (the sans-IO round protocol),
``accountant`` (RDP of the sampled Gaussian), ``budget`` (PrivacyBudgetManager),
``dp`` (DP-SGD and client-level noise), ``compression`` (top-k), ``receipts``,
``orchestrator`` (the asyncio ``coordinator`` service and ``participant`` clients that run
``rounds`` over ``transport`` channels, framed by ``wire``; ``node_channel``: those channels over
``betanet.node`` messages), ``digits`` and ``simulation`` (a real training run; the
``fl`` extra), ``cli`` (``betanet fl run``). The masking hot path is in libbetanet
(``betanet._native.secagg``, include/betanet/secagg.h).
"""
