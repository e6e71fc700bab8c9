"""Delay-tolerant networking: BPv7 bundles, BPSec, the crash-safe bundle store and the
convergence layers (TCPCLv4, MTCP, UDP) that carry bundles between nodes."""
