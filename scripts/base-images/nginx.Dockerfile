# Stand-in for nginx:<version>-trixie. What the project relies on: the nginx
# binary (>= 1.27.3 for upstream `server ... resolve`; ssl, http_v2, realip,
# gzip_static, stub_status built in), /etc/nginx/mime.types, user nginx (101).
# Debian 13 has 1.26, so nginx comes from sid (a dated snapshot, hence
# Check-Valid-Until=false), pinned to this one package.
FROM djangostack/debian-rootfs:trixie
ARG TAG
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN groupadd --system --gid 101 nginx \
 && useradd --system --uid 101 --gid nginx --home-dir /nonexistent --shell /usr/sbin/nologin nginx \
 && echo 'deb http://deb.debian.org/debian sid main' > /etc/apt/sources.list.d/sid.list \
 && printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' > /etc/apt/preferences.d/sid \
 && apt-get -o Acquire::Check-Valid-Until=false update \
 && apt-get install -y --no-install-recommends -t sid nginx \
 && rm -f /etc/apt/sources.list.d/sid.list /etc/apt/preferences.d/sid \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled /etc/nginx/sites-available \
 && v="$(nginx -v 2>&1 | sed 's|.*nginx/||')" \
 && case "$v" in "${TAG%%-*}"|"${TAG%%-*}".*) ;; *) echo "nginx $v does not match tag $TAG" >&2; exit 1 ;; esac
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
