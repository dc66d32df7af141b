# Stand-in for postgres:<version>-trixie. What the project relies on: user
# postgres (999), PGDATA=/var/lib/postgresql/data, first-run initialisation from
# POSTGRES_USER / POSTGRES_DB / POSTGRES_PASSWORD_FILE, pg_isready, SIGINT stop.
FROM djangostack/debian-rootfs:trixie
ARG TAG
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-17 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 1777 /var/lib/postgresql/data && chmod 3777 /var/run/postgresql \
 && v="$(/usr/lib/postgresql/17/bin/postgres --version | awk '{print $3}')" \
 && case "$v" in "${TAG%%-*}"|"${TAG%%-*}".*) ;; *) echo "postgres $v does not match tag $TAG" >&2; exit 1 ;; esac
ENV PATH=/usr/lib/postgresql/17/bin:$PATH PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
