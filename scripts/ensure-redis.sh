#!/usr/bin/env bash
# Makes sure a Redis answers for the Redis tests, at REDIS_URL (default redis://127.0.0.1:6379).
# Installs redis-server when it is missing (the fault tests start servers of their own); when
# nothing answers there and the address is local, starts a throwaway one (daemonized, bound
# to 127.0.0.1, no persistence) on that port.
set -euo pipefail

url="${REDIS_URL:-redis://127.0.0.1:6379}"
address="${url#*://}"     # drop the scheme
address="${address##*@}"  # and any credentials
address="${address%%/*}"  # and the database
host="${address%:*}"
port="${address##*:}"
if [ "$port" = "$address" ]; then port=6379; fi
if [ -z "$host" ] || [ "$host" = "localhost" ]; then host=127.0.0.1; fi

# Whether something at host:port answers PING (a -NOAUTH error counts: a server is there).
answers() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "PING\r\n" >&3
    IFS= read -r -t 2 reply <&3 || exit 1
    [[ "$reply" == +* || "$reply" == -* ]]' "$host" "$port" 2>/dev/null
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi
}

# The fault tests start throwaway redis-server processes of their own: the binary must be
# here even when a shared Redis already answers.
if ! command -v redis-server >/dev/null; then
  echo "ensure-redis: installing redis-server"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y redis-server || { as_root apt-get update && as_root apt-get install -y redis-server; }
fi

if answers; then
  echo "ensure-redis: Redis answers at $host:$port"
  exit 0
fi

if [ "$host" != "127.0.0.1" ]; then
  echo "ensure-redis: nothing answers at $host:$port, and only a local Redis can be started here" >&2
  exit 1
fi

echo "ensure-redis: starting redis-server on 127.0.0.1:$port"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no

for _ in $(seq 1 100); do
  if answers; then
    echo "ensure-redis: Redis answers at 127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "ensure-redis: redis-server did not come up on 127.0.0.1:$port" >&2
exit 1
