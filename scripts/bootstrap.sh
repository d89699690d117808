#!/usr/bin/env bash
# Installs what ferry needs on a Debian 12 machine that has Python 3 and g++, and nothing when
# everything is already there (a second run takes well under a second).
#
#   scripts/bootstrap.sh demo   # build + run the demo: libcurl, CLI11, nginx
#   scripts/bootstrap.sh test   # also GoogleTest, clang/libFuzzer (fuzz targets), Ceph radosgw (S3)
#
# Python tools (cmake, ninja, nanobind, pytest, ...) go into .venv, rebuilt when
# requirements-dev.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-test}

packages=(g++ libcurl4-openssl-dev libssl-dev libcli11-dev libsimdjson-dev libxxhash-dev libpcre2-dev libutf8proc-dev pkg-config nginx-light python3-venv)
if [[ $purpose == test ]]; then
  packages+=(libgtest-dev libgmock-dev clang-14 libclang-rt-14-dev ceph-mon ceph-osd radosgw)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# A Python that is not Debian's (pyenv, a toolchain) brings its own venv module.
if [[ " ${missing[*]} " == *" python3-venv "* ]] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
  read -r -a missing <<< "${missing[*]}"
fi
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo=""
  [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "bootstrap: preparing .venv"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
