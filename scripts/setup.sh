#!/bin/sh
# Brings this machine to what Warren needs, idempotently: Debian packages, npm
# dependencies, the build, and the base template. Prints what it does; prints
# nothing when there is nothing to do.
set -eu
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "Warren runs sandboxes with runc, network namespaces and nftables: run as root"
  exit 1
fi

# --- Debian packages -------------------------------------------------------
# runc: the OCI runtime; tini: process 1 of every sandbox; nftables/iproute2/conntrack: per-sandbox networking;
# debootstrap: the base template; util-linux: nsenter/mount/losetup; e2fsprogs: each
# sandbox's disk; lxcfs: sandboxes' own /proc/meminfo, uptime...; attr (setfattr):
# overlayfs opaque directories and file capabilities in layers pulled from OCI
# images; nginx, docker-registry and zstd: the proxy benchmark's baseline, and the
# local OCI registry and zstd layers of the image tests (their services are kept
# from starting); openssl: the tests' self-signed certificates (a sandbox's own
# HTTPS server); libnss-myhostname: resolves the `{port}-{id}.localhost`
# sandbox hosts for the host's programs (below); postgresql: the store of
# several API replicas, which tests and benchmarks start privately (initdb in
# a temp dir; the system-wide service is kept from starting and never used);
# runsc: gVisor, the `gvisor` isolation (a node without it offers runc only);
# chromium: the dashboard's browser tests and its README screenshot
# (headless, driven by playwright-core: no browser is downloaded); g++, make
# and python3: node-gyp's build of the edge's native relay (packages/shared/native).
packages="g++ make python3 runc tini nftables iproute2 conntrack debootstrap util-linux procps ca-certificates e2fsprogs lxcfs attr nginx-light docker-registry zstd openssl libnss-myhostname postgresql runsc chromium"
missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $p"
  fi
done
if [ -n "$missing" ]; then
  say "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # nginx, docker-registry and postgresql are only used by benchmarks and
  # tests: keep their services from starting.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# --- *.localhost names -----------------------------------------------------
# The SDK hands out sandbox URLs `{port}-{id}.localhost:3002`. glibc resolves
# `*.localhost` to loopback only through nss-myhostname, and it must come
# before `dns` in the hosts line so that such names are answered here and
# never sent to a DNS server.
nss=/etc/nsswitch.conf
nss_hosts() {
  # The hosts line with `myhostname` first, or right after `files` (and its
  # [actions]) when that is first.
  awk '
    /^hosts:/ {
      n = 0; placed = 0
      for (i = 2; i <= NF; i++) if ($i != "myhostname") t[++n] = $i
      out = "hosts:         "
      for (i = 1; i <= n; i++) {
        out = out " " t[i]
        if (i == 1 && t[i] == "files") {
          while (i < n && t[i + 1] ~ /^\[/) { i++; out = out " " t[i] }
          out = out " myhostname"; placed = 1
        }
      }
      if (!placed) { sub(/^hosts: */, "hosts:          myhostname ", out) }
      print out; found = 1; next
    }
    { print }
    END { if (!found) print "hosts:          files myhostname dns" }
  ' "$nss" 2>/dev/null
}
hosts_line() { grep '^hosts:' | tr -s ' \t' ' '; }
if [ ! -f "$nss" ] || [ "$(nss_hosts | hosts_line)" != "$(hosts_line < "$nss")" ]; then
  say "resolving *.localhost on this host: myhostname before dns in $nss"
  tmp="$nss.warren-tmp"
  if [ -f "$nss" ]; then nss_hosts > "$tmp"; else echo 'hosts:          files myhostname dns' > "$tmp"; fi &&
    chmod 644 "$tmp" && mv "$tmp" "$nss" || {
    rm -f "$tmp"
    say "could not update $nss; edit its hosts line so that myhostname comes before dns:"
    say "  hosts:          files myhostname dns"
  }
fi

# --- npm dependencies ------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  # `npm install` from the lock file rather than `npm ci`: npm 11 omits other
  # platforms' optional packages (Biome's) from the lock, and `npm ci` then
  # refuses the lock as out of sync.
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi

# --- build -----------------------------------------------------------------
stamp=node_modules/.warren-build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find packages -path '*/node_modules' -prune -o -path '*/dist' -prune -o -path '*/src/gen' -prune -o -type f -newer "$stamp" -print | head -n 1)" ]; then
  say "building"
  npm run build --silent >/dev/null
  touch "$stamp"
fi

# --- base template ---------------------------------------------------------
# A no-op (and silent) when the cached build matches the recipe.
node packages/cli/dist/main.js template build base --quiet-if-current
