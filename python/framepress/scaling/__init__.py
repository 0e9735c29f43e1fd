"""Scaling and observability: metrics, system metrics, autoscale, the local cluster, health, pod cost."""
