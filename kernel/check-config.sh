#!/usr/bin/env bash
# Usage: check-config.sh FRAGMENT DOTCONFIG
#
# Fails (exit 1, naming each one) when an option of FRAGMENT did not stick in the final
# DOTCONFIG. Kconfig drops a requested value silently when a dependency is missing
# (RPMSG_VIRTIO without HAS_DMA, SAMPLE_RPMSG_CLIENT without MODULES), so a build that
# "worked" may lack what the tests need. Fragment lines are `CONFIG_X=value` or
# `# CONFIG_X is not set`; other lines are comments.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 FRAGMENT DOTCONFIG" >&2
    exit 2
fi
fragment=$1
dotconfig=$2
for f in "$fragment" "$dotconfig"; do
    [[ -r $f ]] || { echo "check-config: cannot read $f" >&2; exit 2; }
done

# The final value of each option: `y`, `m`, a string/number, or `n` for "is not set" and absent.
declare -A final=()
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        final[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
        final[${BASH_REMATCH[1]}]=n
    fi
done <"$dotconfig"

checked=0
bad=0
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        name=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
        name=${BASH_REMATCH[1]} want=n
    else
        continue
    fi
    checked=$((checked + 1))
    got=${final[$name]:-n}
    if [[ $got != "$want" ]]; then
        echo "check-config: $name=$want requested by $fragment, but $dotconfig has $name=$got" >&2
        bad=$((bad + 1))
    fi
done <"$fragment"

if ((bad)); then
    echo "check-config: $bad of $checked options did not stick (a dependency is missing?)" >&2
    exit 1
fi
echo "check-config: all $checked options of $(basename "$fragment") are set"
