#!/usr/bin/env bash
# Makes sure MariaDB (and Redis, when installed) answer on 127.0.0.1, starting them if they
# are installed but stopped, installing MariaDB with apt-get if it is missing (root only).
set -euo pipefail

mariadb_up() { mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1; }

if ! mariadb_up; then
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "MariaDB is not installed; installing mariadb-server" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
  echo "starting MariaDB" >&2
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql 2>/dev/null \
    || start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb_up && break; sleep 1; done
  mariadb_up || { echo "MariaDB did not start" >&2; exit 1; }
fi
# root over TCP with an empty password is what the test settings use.
mysql --protocol=tcp -h127.0.0.1 -uroot -e "SELECT 1" >/dev/null

if command -v redis-server >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 20); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
echo "services ready" >&2
