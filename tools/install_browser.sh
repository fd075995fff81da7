#!/usr/bin/env bash
# Install Debian's chromium, which the report test drives headless (through playwright's API; no
# browser download). Best effort: without root and apt-get this only says what is missing, and
# the report's browser test skips with that reason.
set -u
for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null 2>&1 && exit 0; done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no chromium: the report's headless-browser test will skip"
  exit 0
fi
apt-get install -y -qq chromium >/dev/null 2>&1 ||
  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }
if command -v chromium >/dev/null 2>&1; then
  echo "installed $(chromium --version 2>/dev/null | head -1)"
else
  echo "note: could not install chromium: the report's headless-browser test will skip"
fi
