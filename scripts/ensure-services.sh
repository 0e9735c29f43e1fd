#!/usr/bin/env bash
# Makes sure RabbitMQ (5672) and PostgreSQL (5432, database "test") answer on loopback; installs
# and starts them from Debian's packages when they do not.
set -euo pipefail
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

answers() { timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_for() { for _ in $(seq 60); do answers "$1" && return 0; sleep 1; done; echo "port $1 did not answer" >&2; return 1; }

if ! answers 5432; then
  if ! command -v pg_ctlcluster >/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
  fi
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_for 5432
fi
# Trust auth for loopback tests and the "test" database.
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  $SUDO -u postgres psql -c 'create database test' >/dev/null 2>&1 || \
    su postgres -c "psql -c 'create database test'" >/dev/null 2>&1 || true
fi

if ! answers 5672; then
  if ! command -v rabbitmq-server >/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rabbitmq-server
  fi
  $SUDO rabbitmq-server -detached || true
  wait_for 5672
fi
echo "services: postgres 5432 and rabbitmq 5672 answer"
