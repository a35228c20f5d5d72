#!/usr/bin/env bash
# Make the project's Snakemake profiles available by bare name (`snakemake --profile leonardo`).
#
# Snakemake resolves --profile NAME as a path, then ./NAME, then the user config directory
# ($XDG_CONFIG_HOME/snakemake or ~/.config/snakemake); it never looks in ./profiles/. This script
# links every profiles/NAME of this checkout there as a symbolic link, so the profiles stay in sync
# with the checkout.
#
#   scripts/setup-profiles.sh            link (again: does nothing for links already in place)
#   scripts/setup-profiles.sh --force    also re-point links that lead to another checkout
#   scripts/setup-profiles.sh --remove   remove the links that lead to this checkout
#
# Never replaces a real directory or file, nor (without --force) a link to somewhere else: it
# reports them and exits with status 1. profiles/default is never linked: Snakemake would treat
# it as the workflow profile of every run.
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

mode=link
case "${1:-}" in
    "") ;;
    --force) mode=force ;;
    --remove) mode=remove ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup-profiles: unknown option $1" >&2; usage >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
target_dir="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
status=0

for source in "$repo"/profiles/*/; do
    source="${source%/}"
    name="$(basename "$source")"
    target="$target_dir/$name"
    if [ "$name" = default ]; then
        echo "skip   $name (a profile named default would apply to every Snakemake run)"
        continue
    fi
    if [ ! -f "$source/config.yaml" ] && [ ! -f "$source/profile.yaml" ]; then
        echo "skip   $name (no config.yaml in $source)"
        continue
    fi
    if [ -L "$target" ]; then
        current="$(readlink "$target")"
        if [ "$current" = "$source" ]; then
            if [ "$mode" = remove ]; then
                rm "$target"
                echo "remove $target"
            else
                echo "ok     $target -> $source"
            fi
            continue
        fi
        if [ "$mode" = force ]; then
            ln -sfn "$source" "$target"
            echo "relink $target -> $source (was -> $current)"
        elif [ "$mode" = remove ]; then
            echo "keep   $target (-> $current, not this checkout)"
        else
            echo "refuse $target: a link to $current (not this checkout); rerun with --force to re-point it" >&2
            status=1
        fi
        continue
    fi
    if [ -e "$target" ]; then
        [ "$mode" = remove ] && { echo "keep   $target (not a link)"; continue; }
        echo "refuse $target: exists and is not a link made by this script; move it away to install $name" >&2
        status=1
        continue
    fi
    [ "$mode" = remove ] && continue
    mkdir -p "$target_dir"
    ln -s "$source" "$target"
    echo "link   $target -> $source"
done

if [ "$mode" != remove ] && [ "$status" -eq 0 ]; then
    echo "Profiles ready: snakemake --profile NAME (run it in $repo)."
fi
exit "$status"
