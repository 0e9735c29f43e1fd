# syntax=docker/dockerfile:1
# CPU image of framepress: `docker build -t framepress:0.1.0 .`
# The GPU variant is Dockerfile.gpu. Both run `framepress worker` by default; any other command
# (`reaper`, `cluster`, `transcode` ...) is an argument away.

# ---- build: the wheel, compiled against Debian 12's FFmpeg 5.1 ---------------------------------
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      libavformat-dev libavcodec-dev libavfilter-dev libswscale-dev libswresample-dev libavutil-dev \
      libzimg-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The wheel goes into a venv with its dependencies; the runtime stage copies the venv whole.
RUN python -m venv /opt/framepress \
 && /opt/framepress/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/framepress/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && /opt/framepress/bin/pip install --no-cache-dir /wheels/framepress-*.whl

# ---- runtime: Python, FFmpeg's shared libraries (same versions), the venv -----------------------
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libavformat59 libavcodec59 libavfilter8 libswscale6 libswresample4 libavutil57 libzimg2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin framepress \
 && mkdir /scratch && chown 10001:10001 /scratch
COPY --from=build /opt/framepress /opt/framepress
ENV PATH=/opt/framepress/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FRAMEPRESS_LOG_FORMAT=json \
    FRAMEPRESS_SCRATCH_DIR=/scratch \
    FRAMEPRESS_METRICS_PORT=9100
USER 10001:10001
WORKDIR /scratch
EXPOSE 9100
# Exec form: the worker is PID 1 and receives SIGTERM itself (drain); see k8s/README.md.
ENTRYPOINT ["framepress"]
CMD ["worker"]
