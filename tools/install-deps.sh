#!/usr/bin/env bash
# Installs the Debian 12 packages scanflash builds and tests with, when they
# are missing. Idempotent: prints nothing to do when all are present. When not
# root it installs nothing and names what is missing (the build then fails at
# configure with the missing library named).
#   tools/install-deps.sh [build|test|report]   (default: build)
set -u
what=${1:-build}
pkgs=(build-essential cmake pkg-config git ca-certificates
      libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools
      libcjson-dev libyaml-dev libpcre2-dev libutf8proc-dev zlib1g-dev libssl-dev
      libgsl-dev gnuplot-nox)
case "$what" in
  build) ;;
  test) pkgs+=(python3) ;;
  report) ;;  # libgsl-dev and gnuplot-nox are in the build set
  *) echo "install-deps: unknown set '$what' (build, test, report)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root, not installing; missing Debian packages: ${missing[*]}" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/scanflash-apt.log 2>&1; then
  apt-get update -q >>/tmp/scanflash-apt.log 2>&1
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/scanflash-apt.log 2>&1 || {
    echo "install-deps: apt-get failed (log: /tmp/scanflash-apt.log)" >&2; tail -5 /tmp/scanflash-apt.log >&2; exit 1; }
fi
