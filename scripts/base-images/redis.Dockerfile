# Stand-in for redis:<series>-trixie (Debian 13 has Redis 8.0). What the project relies on: redis-server
# on PATH, user redis (999), WORKDIR /data; compose.yaml passes every setting on
# the command line, so no config file is needed.
FROM djangostack/debian-rootfs:trixie
ARG TAG
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN groupadd --system --gid 999 redis \
 && useradd --system --uid 999 --gid redis --home-dir /data --shell /usr/sbin/nologin redis \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data \
 && v="$(redis-server --version | sed 's/.*v=\([0-9.]*\).*/\1/')" \
 && case "$v" in "${TAG%%-*}"|"${TAG%%-*}".*) ;; *) echo "redis $v does not match tag $TAG" >&2; exit 1 ;; esac
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
