#!/usr/bin/env bash
# docker/base-image.sh -- makes the local base image docker.io/library/debian:bookworm-slim with
# debootstrap, for machines that reach Debian's package archive but no container registry.
#
# Run with the engine environment set (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF: see engine.sh).
# Does nothing when the image already exists. The archive address is read at run time from this
# host's own apt sources and the rootfs gets the host's apt sources, so `RUN apt-get` in a build
# reaches the same archive. The rootfs is trimmed the way the official slim image is: no docs,
# man pages, info pages or locales, and dpkg is told to keep leaving them out.
set -euo pipefail

IMAGE=docker.io/library/debian:bookworm-slim
SUITE=bookworm

if podman image exists "$IMAGE"; then
    echo "base-image: $IMAGE exists (cached)"
    exit 0
fi

# The first "deb" archive URI of the host's sources (deb822 .sources or one-line .list format).
host_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri=$(awk 'BEGIN{IGNORECASE=1}
                   /^Types:/ {deb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/)}
                   /^URIs:/ && deb && $2 !~ /security/ {print $2; exit}' "$f")
        if [ -n "$uri" ]; then
            echo "$uri"
            return 0
        fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '$1 == "deb" {u = $2; if (u ~ /^\[/) {for (i = 2; i <= NF; i++) if ($i ~ /\]$/) {u = $(i+1); break}}
                                 if (u !~ /security/) {print u; exit}}' "$f")
        if [ -n "$uri" ]; then
            echo "$uri"
            return 0
        fi
    done
    return 1
}

mirror=$(host_mirror) || {
    echo "base-image: no Debian archive found in this host's apt sources" >&2
    exit 1
}

work=$(mktemp -d /var/tmp/fanout-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

echo "base-image: debootstrap $SUITE (minbase) from the host's archive"
debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}

# The host's apt sources, and the host's Acquire settings (proxy, validity checks), not its hooks.
rm -f "$rootfs/etc/apt/sources.list"
rm -f "$rootfs"/etc/apt/sources.list.d/*
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$rootfs/etc/apt/sources.list"
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && cp "$f" "$rootfs/etc/apt/sources.list.d/"
done
for f in /etc/apt/apt.conf.d/*; do
    if [ -f "$f" ] && grep -q '^[[:space:]]*Acquire::' "$f" && ! grep -q 'Invoke' "$f"; then
        cp "$f" "$rootfs/etc/apt/apt.conf.d/"
    fi
done

# What the official image configures for use in containers.
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'Apt::AutoRemove::SuggestsImportant "false";' \
    >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
echo 'force-unsafe-io' >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CONF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CONF

# Trim what debootstrap already installed the same way.
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
: >"$rootfs/etc/machine-id"

tar -C "$rootfs" --numeric-owner -c . |
    podman import --quiet --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "base-image: $IMAGE made ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
