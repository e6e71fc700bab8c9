"""Operator tools that are not part of the protocol stack: ``relay`` (a user-space link
shaper for fault injection: loss, delay, bandwidth cap, cut; its command line in
``relay_cli``), what it forwards (``flows``) and its sans-IO core ``shaper``."""
