#!/usr/bin/env bash
# Build the production images without any container registry, the way docker/sandbox/build.sh builds the
# sandbox (read it first: this script follows it step by step).
#
#   docker/production/build.sh              build what changed, otherwise a quick no-op
#   PRODUCTION_FORCE_REBUILD=1 build.sh     rebuild even if the labels match
#
# Images (each labelled with the sha256 of its inputs; a matching label means "up to date"):
#   dd2601-server-base:bookworm  debootstrap minbase of Debian bookworm with python3, postgresql-15,
#                                redis-server, nginx-light and openssl from Debian's packages (the mirror is
#                                reached from the host, never from a container), `docker import`ed;
#   dd2601-server:latest         that, plus the entrypoints of the postgres, redis and proxy services;
#   dd2601-app-base:latest       that, plus /opt/site: the project's dependencies and gunicorn, installed
#                                on the host with `pip install --target` for Python 3.11 (the same wheels
#                                the sandbox image gets, the CPU torch among them);
#   dd2601-app:latest            that, plus the code in /app: the web, worker and beat services run it.
# The sandbox image itself (docker/sandbox/build.sh) is run by the workers through the host's engine.
# Needs root (debootstrap) and a running dockerd.
set -euo pipefail

readonly BASE_IMAGE=dd2601-server-base:bookworm
readonly SERVER_IMAGE=dd2601-server:latest
readonly APP_IMAGE=dd2601-app:latest
readonly INPUTS_LABEL=org.dd2601.inputs
readonly SUITE=bookworm
readonly MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly PYTHON=${PYTHON:-python3}
# pip evaluates dependency markers (e.g. redis needs async-timeout before Python 3.11.3) with the interpreter
# that runs it, so the site is installed by the interpreter the images run: Debian bookworm's python3.
readonly SITE_PYTHON=${SITE_PYTHON:-/usr/bin/python3}
readonly PACKAGES=python3,postgresql-15,redis-server,nginx-light,openssl,ca-certificates,procps

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
readonly script_dir repo_root
readonly build_dir=$repo_root/var/build/production          # var/ is git-ignored
readonly rootfs=$build_dir/rootfs
readonly site=$build_dir/site
readonly site_stamp=$build_dir/site.sha256
readonly context=$build_dir/context
export DOCKER_BUILDKIT=0   # the legacy builder, as for the sandbox (engine 20.10, no buildx)

log() { printf '[production-build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
force() { [[ ${PRODUCTION_FORCE_REBUILD:-0} == 1 ]]; }
label_of() { docker image inspect --format "{{ index .Config.Labels \"$INPUTS_LABEL\" }}" "$1" 2>/dev/null || true; }
hash_files() { (cd "$repo_root" && xargs -0 sha256sum) | sha256sum | cut -d' ' -f1; }

# rm -rf a directory that may hold a debootstrap target (build.sh of the sandbox explains why).
safe_rm() {
    local dir=$1 mnt
    [[ -e $dir ]] || return 0
    if command -v findmnt >/dev/null; then
        while read -r mnt; do
            [[ $mnt == "$dir"/* ]] && { umount -l "$mnt" 2>/dev/null || true; }
        done < <(findmnt -rn -o TARGET | sort -r)
    fi
    rm -rf --one-file-system -- "$dir"
}
trap 'safe_rm "$rootfs"; safe_rm "$site.tmp"; safe_rm "$context"' EXIT

# The code that goes into /app: every file git knows or would add (tracked, or untracked and not ignored),
# without tests and the images' own build folders. NUL-separated, sorted: it feeds the hash and the copy.
app_files() {
    (cd "$repo_root" && git ls-files -z --cached --others --exclude-standard) \
        | tr '\0' '\n' | grep -v -E '^(tests/|var/|\.ci/|bench/|docs/)' \
        | while IFS= read -r f; do [[ -f $repo_root/$f ]] && printf '%s\0' "$f"; done | LC_ALL=C sort -z
}

# The Python requirements of the app: the project's dependencies plus its `production` extra, read from
# pyproject.toml (one list to keep), with the CPU torch pinned as bin/setup.sh pins it.
requirements() {
    "$PYTHON" - "$repo_root/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for req in project["dependencies"] + project.get("optional-dependencies", {}).get("production", []):
    print("torch==2.13.0" if req.replace(" ", "").startswith("torch") else req)
PY
}

command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "cannot reach dockerd (is it running? try: dockerd &)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$PYTHON is not Python 3.11, the version of Debian bookworm's python3 in the images"
mkdir -p "$build_dir"
exec 9>"$build_dir/.lock"
flock 9   # one build at a time; every check below is made after waiting

# ---- 1. the base: debootstrap with Debian's packages, imported (cached by its package list) -------------
base_want=$(printf '%s %s\n' "$SUITE" "$PACKAGES" | sha256sum | cut -d' ' -f1)
if ! force && [[ $(label_of "$BASE_IMAGE") == "$base_want" ]]; then
    log "$BASE_IMAGE is up to date"
else
    [[ $EUID -eq 0 ]] || die "debootstrap needs root to build $BASE_IMAGE"
    command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"
    step=$SECONDS
    log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
    safe_rm "$rootfs"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >&2
    # The packages' own clusters, logs and caches: the services make their data in their volumes.
    rm -rf "${rootfs:?}"/var/lib/postgresql/* "${rootfs:?}"/etc/postgresql/* "${rootfs:?}"/var/cache/apt/archives/*.deb \
        "${rootfs:?}"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -c . \
        | docker import --change "LABEL $INPUTS_LABEL=$base_want" - "$BASE_IMAGE" >/dev/null
    safe_rm "$rootfs"
    log "base image: $((SECONDS - step)) s"
fi

# ---- 2. the server image: the base plus the service entrypoints ----------------------------------------
server_files() { printf '%s\0' docker/production/Dockerfile.server docker/production/server/*; }
server_want=$({ echo "$base_want"; server_files | hash_files; } | sha256sum | cut -d' ' -f1)
if ! force && [[ $(label_of "$SERVER_IMAGE") == "$server_want" ]]; then
    log "$SERVER_IMAGE is up to date"
else
    safe_rm "$context"
    mkdir -p "$context"
    cp -r "$script_dir/server" "$context/server"
    docker build --force-rm --label "$INPUTS_LABEL=$server_want" --tag "$SERVER_IMAGE" \
        --file "$script_dir/Dockerfile.server" "$context" >&2
    safe_rm "$context"
fi

# ---- 3. the app's site-packages, on the host (cached by the requirements) ------------------------------
image_python=$(docker run --rm "$BASE_IMAGE" python3 -c 'import platform; print(platform.python_version())')
site_python=$("$SITE_PYTHON" -c 'import platform; print(platform.python_version())' 2>/dev/null || true)
[[ $site_python == "$image_python" ]] || die "the images run Python $image_python; $SITE_PYTHON is '$site_python'. \
Install Debian's python3 and python3-pip (or set SITE_PYTHON to a Python $image_python with pip)"
site_want=$({ requirements; echo "$image_python"; } | sha256sum | cut -d' ' -f1)
if [[ -d $site && -f $site_stamp && $(<"$site_stamp") == "$site_want" ]]; then
    log "site dir matches the requirements; skipping pip"
else
    step=$SECONDS
    rm -f "$site_stamp"
    safe_rm "$site.tmp"
    requirements >"$build_dir/requirements.txt"
    "$SITE_PYTHON" -m pip install --target "$site.tmp" --no-compile --disable-pip-version-check --no-input \
        -r "$build_dir/requirements.txt" >&2
    safe_rm "$site"
    mv "$site.tmp" "$site"
    printf '%s\n' "$site_want" >"$site_stamp"
    log "pip: $((SECONDS - step)) s"
fi

# ---- 4. the app's packages as an image layer of their own (cached by the requirements) -------------------
readonly APP_BASE_IMAGE=dd2601-app-base:latest
app_base_want=$({ echo "$server_want $site_want"; printf '%s\0' docker/production/Dockerfile.app-base | hash_files; } \
                | sha256sum | cut -d' ' -f1)
if ! force && [[ $(label_of "$APP_BASE_IMAGE") == "$app_base_want" ]]; then
    log "$APP_BASE_IMAGE is up to date"
else
    step=$SECONDS
    safe_rm "$context"
    mkdir -p "$context"
    cp -al "$site" "$context/site"
    docker build --force-rm --label "$INPUTS_LABEL=$app_base_want" --tag "$APP_BASE_IMAGE" \
        --file "$script_dir/Dockerfile.app-base" "$context" >&2
    safe_rm "$context"
    log "app base image: $((SECONDS - step)) s"
fi

# ---- 5. the app image: the code on top (a small context, seconds) --------------------------------------
app_want=$({ echo "$app_base_want"; printf '%s\0' docker/production/Dockerfile.app | hash_files;
             app_files | hash_files; } | sha256sum | cut -d' ' -f1)
if ! force && [[ $(label_of "$APP_IMAGE") == "$app_want" ]]; then
    log "$APP_IMAGE is up to date"
else
    step=$SECONDS
    safe_rm "$context"
    mkdir -p "$context/app"
    app_files | (cd "$repo_root" && tar --null -T - -cf -) | tar -C "$context/app" -xf -
    old_id=$(docker image inspect --format '{{.Id}}' "$APP_IMAGE" 2>/dev/null || true)
    docker build --force-rm --label "$INPUTS_LABEL=$app_want" --tag "$APP_IMAGE" \
        --file "$script_dir/Dockerfile.app" "$context" >&2
    safe_rm "$context"
    new_id=$(docker image inspect --format '{{.Id}}' "$APP_IMAGE")
    if [[ -n $old_id && $old_id != "$new_id" ]]; then
        docker image rm "$old_id" >/dev/null 2>&1 || true   # kept while a container still runs it
    fi
    log "app image: $((SECONDS - step)) s"
fi
echo "production images up to date: $SERVER_IMAGE $APP_IMAGE"
