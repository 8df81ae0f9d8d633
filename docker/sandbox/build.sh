#!/usr/bin/env bash
# Build the grading sandbox image dd2601-sandbox:latest without any container registry.
#
#   docker/sandbox/build.sh            build if the inputs changed, otherwise a quick no-op
#   SANDBOX_FORCE_REBUILD=1 build.sh   rebuild the final image even if its label matches
#
# It runs at the start of every test run, so the up-to-date check comes first and costs only a
# few hashes and one `docker image inspect`. Steps when work is needed (each one cached):
#   1. debootstrap a minimal Debian bookworm (python3 3.11) and `docker import` it as the base
#      (skipped while dd2601-sandbox-base:bookworm exists);
#   2. pip install requirements.txt with --target into var/build/site, cp311 wheels only
#      (skipped while the site dir's stamp matches requirements.txt);
#   3. docker build Dockerfile.offline from a small staging dir (site/ + harness/ only);
#   4. label the image with the hash of its inputs, which step 0 compares against.
# Needs root (debootstrap) and a running dockerd. See README.md for the online CUDA path.
set -euo pipefail

readonly IMAGE=dd2601-sandbox:latest
readonly BASE_IMAGE=dd2601-sandbox-base:bookworm
readonly INPUTS_LABEL=org.dd2601.inputs
readonly SUITE=bookworm
readonly MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly PYTHON=${PYTHON:-python3}
# Flags that shape the site dir; they are part of its stamp so changing them reinstalls.
readonly PIP_FLAGS=(--python-version 3.11 --only-binary=:all: --no-compile
                    --disable-pip-version-check --no-input)

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
readonly script_dir repo_root
readonly requirements=$script_dir/requirements.txt
readonly dockerfile=$script_dir/Dockerfile.offline
readonly harness_rel=grader/harness
readonly build_dir=$repo_root/var/build          # var/ is git-ignored
readonly rootfs=$build_dir/rootfs
readonly site=$build_dir/site
readonly site_stamp=$build_dir/site.sha256
readonly context=$build_dir/context

# The legacy builder is what works with this engine (20.10) and a CLI without buildx; set it
# explicitly so a CLI default change cannot switch builders under us.
export DOCKER_BUILDKIT=0

log() { printf '[sandbox-build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Harness files (paths relative to the repo root, NUL-separated, sorted): the same list feeds the
# input hash and the staging copy, so the label describes exactly what went into the image.
# Bytecode caches are skipped: they are git-ignored and the image compiles its own.
harness_files() {
    [[ -d $repo_root/$harness_rel ]] || return 0
    (cd "$repo_root" && find "$harness_rel" -type f \
        ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z)
}

# sha256 over (path, content hash) of requirements.txt, Dockerfile.offline and every harness
# file: a rename, an added or a deleted harness file changes it too.
inputs_hash() {
    {
        printf '%s\0' docker/sandbox/requirements.txt docker/sandbox/Dockerfile.offline
        harness_files
    } | (cd "$repo_root" && xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

image_label() {
    docker image inspect --format "{{ index .Config.Labels \"$INPUTS_LABEL\" }}" "$IMAGE" \
        2>/dev/null || true
}

# rm -rf a build dir that may hold a debootstrap target: an interrupted debootstrap can leave
# /proc, /sys or a bind-mounted /dev mounted inside it, and a plain rm -rf would descend into
# them. Unmount what is left (deepest first), and never cross a filesystem boundary anyway.
safe_rm() {
    local dir=$1 mnt
    [[ -e $dir ]] || return 0
    if command -v findmnt >/dev/null; then
        while read -r mnt; do
            if [[ $mnt == "$dir"/* ]]; then
                umount -l "$mnt" 2>/dev/null || true
            fi
        done < <(findmnt -rn -o TARGET | sort -r)
    fi
    rm -rf --one-file-system -- "$dir"
}

cleanup() {
    # Partial results must never look like a cache hit on the next run.
    safe_rm "$rootfs"
    safe_rm "$site.tmp"
    safe_rm "$context"
}

# ---- site-packages for CPython 3.11 via pip --target (cached by stamp) ----------------------
# The stamp covers requirements.txt and the pip flags; a missing site dir or stamp reinstalls.
# The bwrap backend runs on the same wheels from this dir, so it must exist even when the image does.
site_want=$({ sha256sum <"$requirements"; printf '%s\n' "${PIP_FLAGS[@]}"; } | sha256sum | cut -d' ' -f1)
site_ok() { [[ -d $site && -f $site_stamp && $(<"$site_stamp") == "$site_want" ]]; }
install_site() {
    local step_start=$SECONDS
    log "pip install --target (cp311 wheels) from requirements.txt"
    mkdir -p "$build_dir"
    # Install into a temp dir and swap it in, so an interrupted pip never leaves a half-filled
    # site dir that a stale stamp would vouch for.
    rm -f "$site_stamp"
    safe_rm "$site.tmp"
    # --no-compile: the image's own interpreter writes the .pyc files (Dockerfile compileall).
    "$PYTHON" -m pip install --target "$site.tmp" "${PIP_FLAGS[@]}" -r "$requirements" >&2
    # Console scripts carry the host interpreter's shebang and are useless in the image.
    rm -rf "$site.tmp/bin"
    safe_rm "$site"
    mv "$site.tmp" "$site"
    printf '%s\n' "$site_want" >"$site_stamp"
    log "pip: $((SECONDS - step_start)) s"
}

# ---- 0. quick no-op check -------------------------------------------------------------------
command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "cannot reach dockerd (is it running? try: dockerd &)"
[[ -f $requirements && -f $dockerfile ]] || die "missing $requirements or $dockerfile"

want=$(inputs_hash)
if [[ ${SANDBOX_FORCE_REBUILD:-0} != 1 && $(image_label) == "$want" ]]; then
    site_ok || install_site
    echo "sandbox image up to date"
    exit 0
fi

# Test runs may start this script concurrently: serialise builds, then re-check, because the
# build we waited for may already have produced the wanted image.
mkdir -p "$build_dir"
exec 9>"$build_dir/.lock"
if ! flock -n 9; then
    log "another build is running; waiting for it"
    flock 9
fi
if [[ ${SANDBOX_FORCE_REBUILD:-0} != 1 && $(image_label) == "$want" ]]; then
    echo "sandbox image up to date"
    exit 0
fi
trap cleanup EXIT
total_start=$SECONDS

# ---- 1. base image: debootstrap + docker import (cached as an image) -------------------------
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE exists; skipping debootstrap"
else
    [[ $EUID -eq 0 ]] || die "debootstrap needs root to build $BASE_IMAGE"
    command -v debootstrap >/dev/null || die "debootstrap not installed (apt-get install debootstrap)"
    step_start=$SECONDS
    log "debootstrap $SUITE (minbase + python3) from $MIRROR"
    safe_rm "$rootfs"
    debootstrap --variant=minbase --include=python3 "$SUITE" "$rootfs" "$MIRROR" >&2
    # Package caches are dead weight in a sandbox that never runs apt.
    rm -rf "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/lib/apt/lists/*
    log "importing rootfs as $BASE_IMAGE"
    tar --numeric-owner -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
    safe_rm "$rootfs"       # ~300 MB, and the image now holds it
    log "step 1 (debootstrap + import): $((SECONDS - step_start)) s"
fi

# ---- 2. site-packages (see install_site) ------------------------------------------------------
if site_ok; then
    log "site dir matches requirements.txt; skipping pip"
else
    install_site
fi

# ---- 3. docker build from a small staging dir ------------------------------------------------
# Only site/, harness/ and the Dockerfile are sent to dockerd, never the repo. site/ is
# hard-linked (same filesystem, no copy of ~1 GB); the harness is copied from the same file
# list that was hashed, so the label matches the image content.
step_start=$SECONDS
safe_rm "$context"
mkdir -p "$context/harness"
cp -al "$site" "$context/site"
cp "$dockerfile" "$context/Dockerfile"
if [[ -d $repo_root/$harness_rel ]]; then
    harness_files | (cd "$repo_root" && tar --null -T - -cf -) \
        | tar -C "$context/harness" --strip-components=2 -xf -
    # The sandbox user (10001) owns nothing in the image and must still read every harness file.
    chmod -R a+rX "$context/harness"
else
    log "warning: $harness_rel does not exist; /opt/harness will be empty"
fi

old_id=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
log "docker build $IMAGE (${INPUTS_LABEL}=${want:0:12}…)"
docker build --force-rm --label "$INPUTS_LABEL=$want" --tag "$IMAGE" --file "$context/Dockerfile" \
    "$context" >&2   # step 4: the label is how step 0 recognises this build
safe_rm "$context"
log "step 3 (docker build): $((SECONDS - step_start)) s"

# The superseded image would keep ~1 GB of layers alive; drop it unless something (a running
# sandbox, another tag) still uses it, in which case rmi refuses and we leave it.
new_id=$(docker image inspect --format '{{.Id}}' "$IMAGE")
if [[ -n $old_id && $old_id != "$new_id" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi

# ---- 5. report -------------------------------------------------------------------------------
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
log "total: $((SECONDS - total_start)) s"
printf 'built %s\n  id:     %s\n  size:   %s MB\n  inputs: %s\n' \
    "$IMAGE" "$new_id" "$((size / 1000000))" "$want"
