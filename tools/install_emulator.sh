#!/usr/bin/env bash
# Install qemu-user >= 8, which lets fewstep run bundles as an AVX2-only CPU would on any x86
# machine (`fewstep gate --isa avx2`). qemu 7.x mis-emulates AVX2 (OpenVINO's tanh-GELU is off
# by 2.4 under it), so Debian bookworm's own qemu-user is not enough: its backports' is.
# Best effort: without root and apt-get this only says what is missing.
set -u
qemu_major() { qemu-x86_64 --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1; }
major=$(qemu_major)
if [ -n "$major" ] && [ "$major" -ge 8 ]; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: qemu-user >= 8 is not installed: ISA-emulated gates and tests will use oneDNN's cap or skip"
  exit 0
fi
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [ "$codename" = bookworm ]; then
  list=/etc/apt/sources.list.d/fewstep-bookworm-backports.list
  grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ ||
    echo "deb http://deb.debian.org/debian bookworm-backports main" > "$list"
  apt-get update -qq >/dev/null 2>&1
  apt-get install -y -qq -t bookworm-backports qemu-user >/dev/null 2>&1
else
  apt-get install -y -qq qemu-user >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq qemu-user >/dev/null 2>&1; }
fi
major=$(qemu_major)
if [ -n "$major" ] && [ "$major" -ge 8 ]; then
  echo "installed $(qemu-x86_64 --version | head -1)"
else
  echo "note: could not install qemu-user >= 8: ISA-emulated gates and tests will use oneDNN's cap or skip"
fi
