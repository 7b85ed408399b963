"""Benchmarks of jelmore-infra against raw nats-py baselines (``make bench`` runs bench/run.py)."""
