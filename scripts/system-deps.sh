#!/usr/bin/env bash
# System libraries napari's Qt window needs, plus Xvfb for headless tests (Debian/Ubuntu).
set -euo pipefail
PACKAGES=(xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0
  libxcb-xkb1 libxkbcommon-x11-0 libxcb-randr0 libxcb-shape0 libxcb-cursor0 libgl1 libegl1
  libdbus-1-3 libfontconfig1)
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not found: install Xvfb and Qt's xcb libraries with your package manager." >&2
  exit 0
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
