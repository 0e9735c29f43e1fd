"""`framepress cluster`: an autoscaled pool of workers on this machine."""
from __future__ import annotations

import logging
import shlex
import signal
import sys
import time

import click

from framepress.cli import cli


def _sampler(metric: str):
    from framepress.scaling.sysmetrics import CpuSampler, GpuSampler, gpu_busy_average

    if metric == "cpu":
        return CpuSampler().sample
    gpus = GpuSampler()
    if gpus.count == 0:
        raise click.UsageError("--metric gpu: no GPU visible through NVML")
    return lambda: gpu_busy_average(gpus.sample())


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--min", "minimum", type=click.IntRange(0), default=1, show_default=True,
              help="Workers always running.")
@click.option("--max", "maximum", type=click.IntRange(1), default=4, show_default=True,
              help="Workers at most.")
@click.option("--metric", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="cpu: of the container's quota (else the host); gpu: mean over GPUs of the busiest "
                   "engine (SM, NVENC, NVDEC).")
@click.option("--high", type=click.FloatRange(0, 1), default=0.75, show_default=True,
              help="Add a worker while utilization stays above this.")
@click.option("--low", type=click.FloatRange(0, 1), default=0.30, show_default=True,
              help="Drain a worker while utilization stays below this.")
@click.option("--window", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds that 'stays' means.")
@click.option("--up-cooldown", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds after a change before adding a worker.")
@click.option("--down-cooldown", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="Seconds after a change before draining a worker.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between utilization samples and decisions.")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              help="Seconds a draining worker may take to finish its task before it is cancelled.")
@click.option("--metrics-port-base", type=click.IntRange(0, 65535), default=9100, show_default=True,
              help="Worker i serves /metrics on this port + i (0: leave FRAMEPRESS_METRICS_PORT alone).")
@click.option("--worker-command", default=None,
              help="Command line to run instead of `framepress worker` (split like a shell).")
@click.argument("worker_args", nargs=-1, type=click.UNPROCESSED)
def cluster(minimum: int, maximum: int, metric: str, high: float, low: float, window: float,
            up_cooldown: float, down_cooldown: float, interval: float, drain_timeout: float,
            metrics_port_base: int, worker_command: str | None, worker_args: tuple[str, ...]) -> None:
    """Run an autoscaled pool of workers on this machine; extra arguments go to each worker.

    Scales up while utilization stays above --high, drains the least busy worker while it stays
    below --low. Ctrl-C or SIGTERM drains every worker; a second one cancels their tasks.
    """
    from framepress.scaling.autoscale import Thresholds
    from framepress.scaling.cluster import DEFAULT_WORKER_COMMAND, Pool

    if minimum > maximum:
        raise click.UsageError(f"--min {minimum} is above --max {maximum}")
    try:
        thresholds = Thresholds(high=high, low=low, window_s=window, up_cooldown_s=up_cooldown,
                                down_cooldown_s=down_cooldown)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    command = shlex.split(worker_command) if worker_command else list(DEFAULT_WORKER_COMMAND)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    pool = Pool(minimum, maximum, _sampler(metric), thresholds=thresholds,
                command=[*command, *worker_args], interval_s=interval, drain_timeout_s=drain_timeout,
                metrics_port_base=metrics_port_base or None)

    stops = []  # one entry per SIGINT/SIGTERM: the first drains, the second cancels

    def on_signal(signum: int, _frame: object) -> None:
        stops.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.getLogger("framepress.cluster").info(
        "pool: min=%d max=%d metric=%s high=%.2f low=%.2f window=%gs cooldowns up=%gs down=%gs",
        minimum, maximum, metric, high, low, window, up_cooldown, down_cooldown)
    pool.start()
    next_tick = time.monotonic() + interval
    while not stops:
        time.sleep(min(0.2, max(0.0, next_tick - time.monotonic())))
        if time.monotonic() >= next_tick:
            pool.tick()
            next_tick += interval

    pool.shutdown(force=lambda: len(stops) > 1)  # the second signal cancels the drain
