#!/usr/bin/env bash
# Install everything wqkit needs on a Debian 12 machine, idempotently.
#
#   scripts/setup.sh            apt packages, backports suite, lab kernels, .venv
#
# A second run only checks and costs seconds. The debug vmlinux (353 MB, cached
# under $WQKIT_CACHE) is provisioned by `wqkit lab provision`, called from the
# Makefile after this script.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
tested_release=6.12.95+deb12-amd64     # wqkit.lab.kernel.STOCK_RELEASE
backports_file=/etc/apt/sources.list.d/wqkit-backports.sources

die() { echo "setup: $*" >&2; exit 1; }
step() { echo "setup: $*"; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs Debian packages and a lab kernel)"
[ -r /etc/debian_version ] && command -v apt-get >/dev/null \
	|| die "needs a Debian-like system with apt-get (Debian 12 bookworm is the tested one)"
# shellcheck disable=SC1091
. /etc/os-release
codename="${VERSION_CODENAME:-bookworm}"

apt_packages=(
	qemu-system-x86 busybox-static            # the lab VM (virtme-ng)
	build-essential bc bison flex libelf-dev libssl-dev dwarves kmod cpio
	bpftrace bpfcc-tools python3-bpfcc         # tracers (BCC for /usr/bin/python3)
	python3-venv python3-dev zstd xz-utils
)
# The lab kernel: $WQKIT_LAB_RELEASE, else the tested release while installed
# or still in the archive, else the release backports' linux-image-amd64 now
# depends on (backports keeps only its newest upload).
# Sets lab_release; may update the apt lists to see what the archive holds.
choose_lab_release() {
	lab_release=${WQKIT_LAB_RELEASE:-}
	if [ -z "$lab_release" ] && [ -z "$(missing_packages "linux-image-$tested_release")" ]; then
		lab_release=$tested_release
	fi
	[ -n "$lab_release" ] && return 0
	apt_update
	if apt-cache show "linux-image-$tested_release" >/dev/null 2>&1; then
		lab_release=$tested_release
		return 0
	fi
	local version
	version=$(apt-cache madison linux-image-amd64 | awk -v s="$codename-backports/" '$0 ~ s { print $3; exit }')
	[ -n "$version" ] || die "neither linux-image-$tested_release nor linux-image-amd64 in $codename-backports"
	lab_release=$(apt-cache show "linux-image-amd64=$version" \
		| sed -n 's/^Depends:.*linux-image-\([^ ,]*\).*/\1/p' | head -n 1)
	[ -n "$lab_release" ] || die "could not tell which kernel linux-image-amd64=$version installs"
	step "linux-image-$tested_release is gone from $codename-backports; the lab kernel is $lab_release"
}
# The stable suite's own kernel (Linux 6.1), a second lab kernel on which the
# inspection is checked against an older layout (`--kernel 6.1`).
old_kernel_packages=(linux-image-amd64 linux-headers-amd64)

# Derive the backports suite from the machine's own Debian entry, so that no
# registry host is ever written here.
add_backports() {
	[ -e "$backports_file" ] && return 0
	local src=/etc/apt/sources.list.d/debian.sources
	if [ -r "$src" ]; then
		step "adding $codename-backports (derived from $src)"
		awk -v suite="$codename-backports" '
			BEGIN { RS = ""; ORS = "\n\n" }
			/Suites:/ && $0 !~ /-security/ && !done {
				n = split($0, lines, "\n"); out = ""
				for (i = 1; i <= n; i++) {
					if (lines[i] ~ /^Suites:/) lines[i] = "Suites: " suite
					out = out lines[i] "\n"
				}
				printf "%s", out; done = 1
			}' "$src" >"$backports_file.tmp"
	elif [ -r /etc/apt/sources.list ]; then
		step "adding $codename-backports (derived from /etc/apt/sources.list)"
		awk -v c="$codename" -v suite="$codename-backports" '
			$1 == "deb" && $0 !~ /security/ {
				for (i = 1; i <= NF; i++) if ($i == c) { $i = suite; print; exit }
			}' /etc/apt/sources.list >"$backports_file.tmp"
		# one-line format goes into a .list file
		backports_file=/etc/apt/sources.list.d/wqkit-backports.list
	else
		die "no Debian source entry found to derive $codename-backports from"
	fi
	[ -s "$backports_file.tmp" ] || die "could not derive $codename-backports from the apt sources"
	mv "$backports_file.tmp" "$backports_file"
	sources_changed=yes
}

missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
	done
}

updated=no
apt_update() {
	[ "$updated" = yes ] && return 0
	step "apt-get update"
	apt-get update -qq
	updated=yes
}

sources_changed=no
add_backports
[ "$sources_changed" = yes ] && apt_update
choose_lab_release
lab_packages=("linux-image-$lab_release" "linux-headers-$lab_release")
mapfile -t need < <(missing_packages "${apt_packages[@]}")
mapfile -t need_lab < <(missing_packages "${lab_packages[@]}")
mapfile -t need_old < <(missing_packages "${old_kernel_packages[@]}")
if [ "${#need[@]}" -gt 0 ] || [ "${#need_lab[@]}" -gt 0 ] || [ "${#need_old[@]}" -gt 0 ]; then
	apt_update
fi
export DEBIAN_FRONTEND=noninteractive
if [ "${#need[@]}" -gt 0 ]; then
	step "installing ${need[*]}"
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "${#need_lab[@]}" -gt 0 ]; then
	step "installing the lab kernel ${need_lab[*]} from $codename-backports"
	# Only these packages come from backports; their dependencies come from
	# the stable suite where it can satisfy them, so the host's own packages
	# are not upgraded along the way.
	apt-get install -y -qq --no-install-recommends "${need_lab[@]/%//$codename-backports}" >/dev/null \
		|| apt-get install -y -qq --no-install-recommends -t "$codename-backports" "${need_lab[@]}" >/dev/null
fi
if [ "${#need_old[@]}" -gt 0 ]; then
	# The candidate is the stable suite's (backports has a lower priority).
	step "installing $codename's own kernel (${need_old[*]}), the older lab kernel"
	apt-get install -y -qq --no-install-recommends "${need_old[@]}" >/dev/null
fi

# The venv sees Debian's site-packages so that `import bcc` works.
stamp="$venv/.wqkit-installed"
if [ ! -x "$venv/bin/python" ]; then
	step "creating $venv from /usr/bin/python3 (with system site-packages, for bcc)"
	/usr/bin/python3 -m venv --system-site-packages "$venv"
fi
if [ ! -e "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
	step "installing wqkit and its Python dependencies into $venv"
	"$venv/bin/python" -m pip install -q --upgrade pip
	"$venv/bin/python" -m pip install -q -e "$here[dev]"
	touch "$stamp"
fi
step "ok"
