#!/usr/bin/env bash
# Makes sure MariaDB and Redis answer where the tests expect them (DATABASE_URL's host/port,
# default 127.0.0.1:3306; TEST_REDIS_URL's, default 127.0.0.1:6379), starting them if they are
# installed but stopped and installing them with apt-get if they are missing (root only).
# Redis is a real part of the system (broker, cache, breakers): its tests never skip.
set -euo pipefail

url_part() {  # url_part URL host|port DEFAULT
  python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); v = getattr(p, sys.argv[2]); print(v or sys.argv[3])' "$@"
}
DB_URL="${DATABASE_URL:-mysql://root@127.0.0.1:3306/reserve}"
DB_HOST=$(url_part "$DB_URL" hostname 127.0.0.1)
DB_PORT=$(url_part "$DB_URL" port 3306)
REDIS_URL_FOR_TESTS="${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
REDIS_HOST=$(url_part "$REDIS_URL_FOR_TESTS" hostname 127.0.0.1)
REDIS_PORT=$(url_part "$REDIS_URL_FOR_TESTS" port 6379)

install_if_missing() {  # install_if_missing BINARY PACKAGE…
  local binary=$1; shift
  command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ] && return 0
  echo "$binary is not installed; installing $*" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

mariadb_up() { mysqladmin --protocol=tcp -h"$DB_HOST" -P"$DB_PORT" -uroot ping >/dev/null 2>&1; }

if ! mariadb_up; then
  install_if_missing mariadbd mariadb-server mariadb-client
  echo "starting MariaDB" >&2
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql 2>/dev/null \
    || start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb_up && break; sleep 1; done
  mariadb_up || { echo "MariaDB did not start" >&2; exit 1; }
fi
# root over TCP with an empty password is what the test settings use.
mysql --protocol=tcp -h"$DB_HOST" -P"$DB_PORT" -uroot -e "SELECT 1" >/dev/null

redis_up() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; }

if ! redis_up; then
  install_if_missing redis-server redis-server
  echo "starting Redis on $REDIS_HOST:$REDIS_PORT" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile "/var/log/redis/ci-$REDIS_PORT.log"
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  redis_up || { echo "Redis did not start on $REDIS_HOST:$REDIS_PORT" >&2; exit 1; }
fi
echo "services ready (MariaDB $DB_HOST:$DB_PORT, Redis $REDIS_HOST:$REDIS_PORT)" >&2
