#!/usr/bin/env bash
# Builds aioamp's User-Mode Linux test kernel (`make kernel` runs this):
#   build/uml/linux                     the kernel, an ordinary host executable
#   build/uml/rpmsg_client_sample.ko    the kernel's rpmsg client sample, to insmod in the guest
#
# From Debian's linux-source-6.12 (apt-get install linux-source-6.12 flex bison bc kmod):
# extract, apply kernel/patches/*.patch in order, `make ARCH=um defconfig`, merge
# kernel/uml.config, check that every option stuck (kernel/check-config.sh), build.
#
# A build whose inputs have not changed is reused: the stamp is a sha256 over the tarball,
# the compiler's version and every file in kernel/; build/uml/.stamp holds the one built.
#
# `kernel/build.sh --stamp` prints the stamp of the current inputs and builds nothing.
# Environment: LINUX_TARBALL (default /usr/src/linux-source-6.12.tar.xz),
# AIOAMP_UML_BUILD (output directory, default build/uml), JOBS (default: nproc).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KERNEL_DIR=$ROOT/kernel
TARBALL=${LINUX_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
OUT=${AIOAMP_UML_BUILD:-$ROOT/build/uml}
JOBS=${JOBS:-$(nproc)}
SRC=$OUT/src
LOG=$OUT/build.log
PACKAGES="linux-source-6.12 flex bison bc kmod"

die() {
    echo "kernel/build.sh: $*" >&2
    exit 1
}

[[ -r $TARBALL ]] || die "no kernel source at $TARBALL; install it: apt-get install $PACKAGES"

stamp() {
    {
        echo "tarball $(basename "$TARBALL") $(sha256sum <"$TARBALL" | cut -d' ' -f1)"
        echo "cc $(gcc --version | head -n1)"
        (cd "$KERNEL_DIR" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -d' ' -f1
}

want=$(stamp)
if [[ ${1:-} == --stamp ]]; then
    echo "$want"
    exit 0
fi

for tool in make gcc flex bison bc patch xz; do
    command -v "$tool" >/dev/null ||
        die "'$tool' is missing; install it: apt-get install $PACKAGES patch xz-utils"
done
mkdir -p "$OUT"
exec 9>"$OUT/.lock" # one build at a time per output directory
flock 9

if [[ -f $OUT/.stamp && $(<"$OUT/.stamp") == "$want" && -x $OUT/linux &&
    -f $OUT/rpmsg_client_sample.ko ]]; then
    echo "kernel/build.sh: $OUT/linux is up to date (stamp ${want:0:12})"
    exit 0
fi

start=$SECONDS
rm -f "$OUT/.stamp"
: >"$LOG"
step() { echo "kernel/build.sh: [$((SECONDS - start))s] $*"; }
run() {
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n 60 "$LOG" >&2
        die "failed: $* (full log: $LOG)"
    fi
}

step "extracting $TARBALL into $SRC"
rm -rf "$SRC"
mkdir -p "$SRC"
run tar -xf "$TARBALL" -C "$SRC" --strip-components=1

for p in "$KERNEL_DIR"/patches/*.patch; do
    [[ -e $p ]] || continue
    step "applying $(basename "$p")"
    run patch -d "$SRC" -p1 --batch --forward -i "$p"
done

step "configuring: defconfig + $(basename "$KERNEL_DIR/uml.config")"
run make -C "$SRC" ARCH=um defconfig
run env KCONFIG_CONFIG="$SRC/.config" "$SRC/scripts/kconfig/merge_config.sh" -m -O "$SRC" \
    "$SRC/.config" "$KERNEL_DIR/uml.config"
run make -C "$SRC" ARCH=um olddefconfig
"$KERNEL_DIR/check-config.sh" "$KERNEL_DIR/uml.config" "$SRC/.config"

step "building vmlinux and modules with $JOBS jobs (log: $LOG)"
run make -C "$SRC" ARCH=um -j"$JOBS" vmlinux modules

install -m 0755 "$SRC/vmlinux" "$OUT/linux.new"
mv -f "$OUT/linux.new" "$OUT/linux"
install -m 0644 "$SRC/samples/rpmsg/rpmsg_client_sample.ko" "$OUT/rpmsg_client_sample.ko"
echo "$want" >"$OUT/.stamp"
step "built $OUT/linux ($(cat "$SRC/include/config/kernel.release")) and rpmsg_client_sample.ko"
