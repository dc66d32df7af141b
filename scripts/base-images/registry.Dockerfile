# Stand-in for registry:<major> (the Distribution registry), from Debian 13's docker-registry
# package (2.8.x). What the project relies on, as in the official image: the registry HTTP API
# (v2) on port 5000, storage under /var/lib/registry, the configuration at
# /etc/distribution/config.yml, `registry serve <config>` as the command.
FROM djangostack/debian-rootfs:trixie
ARG TAG
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends docker-registry \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/docker-registry /bin/registry \
 && mkdir -p /etc/distribution /var/lib/registry \
 && printf '%s\n' 'version: 0.1' 'log:' '  level: info' 'storage:' '  filesystem:' \
      '    rootdirectory: /var/lib/registry' '  delete:' '    enabled: true' 'http:' '  addr: :5000' \
      > /etc/distribution/config.yml \
 && v="$(dpkg-query -W -f '${Version}' docker-registry)" \
 # Debian has 2.8 only: the v2 HTTP API that every registry major version (2 and 3) serves.
 && case "$v" in 2.8.*) ;; *) echo "docker-registry $v is not the expected 2.8.x (tag $TAG)" >&2; exit 1 ;; esac
VOLUME /var/lib/registry
EXPOSE 5000
ENTRYPOINT ["registry", "serve"]
CMD ["/etc/distribution/config.yml"]
