# Stand-in for python:<version>-slim-trixie. What the project relies on:
# `python`/`python3` on PATH, `python -m venv` with pip, a UTF-8 locale.
FROM djangostack/debian-rootfs:trixie
ARG TAG
ENV LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && v="$(python3 -c 'import platform; print(platform.python_version())')" \
 && case "$v" in "${TAG%%-*}"|"${TAG%%-*}".*) ;; *) echo "python $v does not match tag $TAG" >&2; exit 1 ;; esac
CMD ["python3"]
