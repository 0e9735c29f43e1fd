"""The task service: how a worker takes a task, runs the seed's steps and survives failures.

- `worker`: the loop that takes deliveries and settles them; `pipeline`: the steps of one task
  (download, transcode, upload, record); `outcomes`: what one delivery can end as;
- `tasks`: the task store (rows, events, leases); `admin`: retry, resolve, cancel;
- `broker`, `storage`, `db`: RabbitMQ or the local queue, S3 or a directory, Postgres or SQLite;
- `outbox`, `dead_letters`, `delay_queues`: no task without its message;
- `attempt_output`, `scratch`: where one attempt's files live until they are committed;
- `failure`: the failure rules, one per module.
"""
