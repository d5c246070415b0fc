#!/usr/bin/env bash
# Debian packages for the browser test: Chromium, its driver, and CJK and emoji fonts so
# the screenshots show Chinese text. Needs root (or sudo); does nothing when installed.
set -euo pipefail
packages=(chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji)
installed=$(dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null \
    | grep -c "install ok installed" || true)
if [ "$installed" -ne "${#packages[@]}" ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "${packages[@]}"
fi
