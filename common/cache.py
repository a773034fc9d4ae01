"""The shared cache's backend: Django's Redis cache, keeping one redis.Redis per connection pool.

Django makes a new redis.Redis for every cache call (`RedisCacheClient.get_client`), and
redis-py 8 builds a table of ~170 response callbacks for each: a tenth of a GET's own time
(bench/profile_api.py). The client is thread-safe and bound to the pool, which Django already
keeps, so one per pool is kept here. (Django's cache handler gives each thread its own backend.)"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        clients = self.__dict__.setdefault("_clients_by_pool", {})
        client = clients.get(id(pool))
        if client is None:
            client = clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
