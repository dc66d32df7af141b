# Stand-in for debian:trixie-slim: the same Debian 13 minbase root filesystem the
# other stand-ins start from (no documentation, no apt cache), nothing added.
FROM djangostack/debian-rootfs:trixie
ARG TAG
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN v="$(cut -d. -f1 /etc/debian_version)" \
 && [ "$v" = 13 ] || { echo "Debian $v is not trixie (13), tag $TAG" >&2; exit 1; }
CMD ["bash"]
