"""The failure rules of the task service, one rule per module:

- `classification`: every error is an outage of a dependency, a permanent task error, or a
  transient task error;
- `backoff`: how long a transient failure waits before the next attempt;
- `breaker`: circuit breakers that pause consuming while a dependency is down;
- `dependencies`: the worker's breakers for S3 and the database, and their probes;
- `policy`: the decision after a failed attempt (retry, defer, escalate) and the task deadline;
- `escalation`: the notices sent when a task is escalated;
- `timeout`: the per-task time limit;
- `drain`: what SIGTERM means;
- `stage_writes`: a short retry around the writes that record a finished stage;
- `heartbeat`: the holder's proof of life and lease renewal;
- `reaper`: lost workers found and their tasks handed back.
"""
