"""The benchmark suite behind `framepress bench` and `bench/ladder.py`.

Modes: `engine` (the engine against FFmpeg CLIs and PyAV on DESIGN §5's reference clip),
`pipeline` (where a task's time goes in the service), `scale` (throughput against workers) and
`gpu` (the GPU paths, when there is a GPU). Each mode returns a plain dict; `report` turns the
dicts into `RESULTS.md` and PNG plots.
"""
