"""The task service: how a worker takes a task and what happens when something fails.

`failure` holds the failure rules, one per module; `outcomes` names what one delivery can end as.
"""
