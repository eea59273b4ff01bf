#!/usr/bin/env bash
# Install the tools wqkit needs on a Debian 12 machine, idempotently.
#
#   scripts/setup.sh            apt packages, the backports source entry, .venv
#
# Only the apt step needs root: run as an ordinary user, the script calls sudo
# for it (and says so), or names the missing packages when it cannot. No
# kernel is ever installed: lab kernels are extracted into the cache by
# `wqkit lab provision` (called by the Makefile after this script), and this
# script stops if its apt step changed /boot or the installed kernel packages.
# A second run only checks and costs seconds.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
die() { echo "setup: $*" >&2; exit 1; }
step() { echo "setup: $*"; }

[ -r /etc/debian_version ] && command -v apt-get >/dev/null \
	|| die "needs a Debian-like system with apt-get (Debian 12 bookworm is the tested one)"
# shellcheck disable=SC1091
. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"

# Root for the apt step only: ourselves, or sudo.
as_root=()
if [ "$(id -u)" != 0 ]; then
	as_root=(sudo)
fi
root_step() {
	if [ "${#as_root[@]}" -gt 0 ] && ! command -v sudo >/dev/null; then
		die "$1 needs root and sudo is not installed: run scripts/setup.sh as root, or $2"
	fi
	[ "${#as_root[@]}" -gt 0 ] && step "$1: running it with sudo (the only step that needs root)"
	return 0
}

# Tools only: the lab's kernels are provisioned into the cache, not installed.
apt_packages=(
	qemu-system-x86 busybox-static            # the lab VM (virtme-ng)
	build-essential bc bison flex libelf-dev libssl-dev dwarves kmod cpio patch ccache git
	bpftrace bpftool clang libbpf-dev          # tracers: bpftrace; the bcc engine's CO-RE programs (clang, bpftool, libbpf)
	python3-venv python3-dev zstd xz-utils
	chromium                                   # the browser tests: JupyterLab and reports, through Playwright
)

# The backports suite (for Linux 6.12), derived from the machine's own Debian
# entry so that no registry host is ever written here. Prints the entry.
backports_entry() {
	local src=/etc/apt/sources.list.d/debian.sources
	if [ -r "$src" ]; then
		awk -v suite="$codename-backports" '
			BEGIN { RS = ""; ORS = "\n\n" }
			/Suites:/ && $0 !~ /-security/ && !done {
				n = split($0, lines, "\n"); out = ""
				for (i = 1; i <= n; i++) {
					if (lines[i] ~ /^Suites:/) lines[i] = "Suites: " suite
					out = out lines[i] "\n"
				}
				printf "%s", out; done = 1
			}' "$src"
	elif [ -r /etc/apt/sources.list ]; then
		awk -v c="$codename" -v suite="$codename-backports" '
			$1 == "deb" && $0 !~ /security/ {
				for (i = 1; i <= NF; i++) if ($i == c) { $i = suite; print; exit }
			}' /etc/apt/sources.list
	fi
}

missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
	done
}

# What the machine boots: must be the same before and after the apt step.
boot_state() {
	ls -A /boot 2>/dev/null
	dpkg-query -W -f='${Package} ${Status}\n' 'linux-image-*' 2>/dev/null | grep ' installed$' || true
}

backports_file=/etc/apt/sources.list.d/wqkit-backports.sources
[ -r /etc/apt/sources.list.d/debian.sources ] || backports_file=/etc/apt/sources.list.d/wqkit-backports.list
mapfile -t need < <(missing_packages "${apt_packages[@]}")
if [ ! -e "$backports_file" ] || [ "${#need[@]}" -gt 0 ]; then
	what="the apt step (${need[*]:-no packages}${need[*]:+; }$([ -e "$backports_file" ] || echo "the $codename-backports entry"))"
	root_step "$what" "install: ${need[*]:-nothing} and add $backports_file"
	before=$(boot_state)
	if [ ! -e "$backports_file" ]; then
		entry=$(backports_entry)
		[ -n "$entry" ] || die "could not derive $codename-backports from the apt sources"
		step "adding $codename-backports to apt's sources ($backports_file)"
		printf '%s\n' "$entry" | "${as_root[@]}" tee "$backports_file" >/dev/null
	fi
	step "apt-get update"
	"${as_root[@]}" apt-get update -qq
	if [ "${#need[@]}" -gt 0 ]; then
		step "installing ${need[*]}"
		"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
	[ "$(boot_state)" = "$before" ] \
		|| die "the apt step changed /boot or the installed kernels; this must never happen (please report)"
fi

stamp="$venv/.wqkit-installed"
if [ ! -x "$venv/bin/python" ]; then
	step "creating $venv from /usr/bin/python3"
	/usr/bin/python3 -m venv "$venv"
fi
if [ ! -e "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
	step "installing wqkit and its Python dependencies into $venv"
	"$venv/bin/python" -m pip install -q --upgrade pip
	"$venv/bin/python" -m pip install -q -e "$here[dev]"
	touch "$stamp"
fi
step "ok"
