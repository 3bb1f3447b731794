#!/usr/bin/env bash
# Builds the Debian packages tended-agent and tended-coordinator from a CMake build with
# dpkg-deb (no debian/ source package): stripped binaries, the units from systemd/, the
# example configuration as conffiles under /etc/tended, the maintainer scripts from
# packaging/debian/, and Depends computed by dpkg-shlibdeps. Prints the .deb paths.
#
#   scripts/build-debs.sh [--build-dir DIR] [--out DIR] [--no-build]
#
# --build-dir  the CMake build to take the programs from (default: build); it is configured
#              and the four programs are built unless --no-build is given.
# --out        where the .deb files go (default: BUILD_DIR/debs).
# Environment: TENDED_DEB_VERSION (default: the project version in CMakeLists.txt),
# TENDED_DEB_MAINTAINER (default: "tended maintainers <tended@example.org>"),
# SOURCE_DATE_EPOCH (default: the last commit's time, so builds are reproducible).
set -euo pipefail
source_dir="$(cd "$(dirname "$0")/.." && pwd)"

build_dir="$source_dir/build"
out_dir=""
do_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$(realpath -m "$2")"; shift 2 ;;
    --out) out_dir="$(realpath -m "$2")"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    *) echo "usage: $0 [--build-dir DIR] [--out DIR] [--no-build]" >&2; exit 2 ;;
  esac
done
out_dir="${out_dir:-$build_dir/debs}"

for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
  command -v "$tool" >/dev/null || { echo "build-debs: $tool is missing (apt install dpkg-dev binutils)" >&2; exit 1; }
done

if [ "$do_build" -eq 1 ]; then
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S "$source_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  ninja -C "$build_dir" tended-agent tended-apt-engine tended-coordinator tendedctl >/dev/null
fi

version="${TENDED_DEB_VERSION:-$(sed -n 's/^project(tended VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")}"
maintainer="${TENDED_DEB_MAINTAINER:-tended maintainers <tended@example.org>}"
arch="$(dpkg --print-architecture)"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$source_dir" log -1 --format=%ct 2>/dev/null || date +%s)"
fi
export SOURCE_DATE_EPOCH

declare -A program_path=(
  [tended-agent]="$build_dir/agent/tended-agent"
  [tended-apt-engine]="$build_dir/agent/tended-apt-engine"
  [tended-coordinator]="$build_dir/coordinator/tended-coordinator"
  [tendedctl]="$build_dir/coordinator/ctl/tendedctl"
)
for program in "${!program_path[@]}"; do
  [ -x "${program_path[$program]}" ] || { echo "build-debs: ${program_path[$program]} is not built" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"

# build_package NAME "PROGRAMS" "UNITS" CONFIG: stages one package and builds its .deb.
build_package() {
  local package="$1" programs="$2" units="$3" config="$4"
  local stage="$work/$package"
  local unit_dir="$stage/lib/systemd/system"
  install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$unit_dir" "$stage/etc/tended" \
    "$stage/usr/share/doc/$package"

  local program
  for program in $programs; do
    install -m 0755 "${program_path[$program]}" "$stage/usr/bin/$program"
    # What dh_strip does: no debug sections, no .comment/.note (build tool versions).
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/$program"
  done
  local unit
  for unit in $units; do
    install -m 0644 "$source_dir/systemd/$unit" "$unit_dir/$unit"
  done
  install -m 0644 "$source_dir/packaging/examples/$config" "$stage/etc/tended/$config"
  if [ "$package" = tended-coordinator ]; then
    install -D -m 0644 "$source_dir/systemd/tended.sysusers.conf" \
      "$stage/usr/lib/sysusers.d/tended.conf"
  fi
  # Every program's man page (docs/man/PROGRAM.SECTION), compressed as dh_installman would.
  local page section
  for program in $programs; do
    for page in "$source_dir/docs/man/$program".[18]; do
      [ -f "$page" ] || { echo "build-debs: no man page for $program in docs/man" >&2; exit 1; }
      section="${page##*.}"
      install -d -m 0755 "$stage/usr/share/man/man$section"
      gzip -9n <"$page" >"$stage/usr/share/man/man$section/$program.$section.gz"
      chmod 0644 "$stage/usr/share/man/man$section/$program.$section.gz"
    done
  done
  install -m 0644 "$source_dir/packaging/debian/copyright" "$stage/usr/share/doc/$package/copyright"
  gzip -9n <"$source_dir/packaging/debian/changelog" >"$stage/usr/share/doc/$package/changelog.gz"
  chmod 0644 "$stage/usr/share/doc/$package/changelog.gz"

  local script
  for script in postinst prerm postrm; do
    install -m 0755 "$source_dir/packaging/debian/$package/$script" "$stage/DEBIAN/$script"
  done
  echo "/etc/tended/$config" >"$stage/DEBIAN/conffiles"
  chmod 0644 "$stage/DEBIAN/conffiles"

  # dpkg-shlibdeps wants a debian/control naming the package; it answers on stdout (-O).
  local shlibs_dir="$work/shlibs-$package"
  mkdir -p "$shlibs_dir/debian"
  printf 'Source: tended\n\nPackage: %s\nArchitecture: any\n' "$package" >"$shlibs_dir/debian/control"
  local args=() depends
  for program in $programs; do args+=("-e$stage/usr/bin/$program"); done
  depends="$(cd "$shlibs_dir" && dpkg-shlibdeps -O "${args[@]}" 2>"$shlibs_dir/warnings" |
    sed -n 's/^shlibs:Depends=//p')"
  if [ -s "$shlibs_dir/warnings" ]; then
    sed 's/^/build-debs: /' "$shlibs_dir/warnings" >&2
  fi
  [ -n "$depends" ] || { echo "build-debs: dpkg-shlibdeps found no dependencies for $package" >&2; exit 1; }

  (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
  chmod 0644 "$stage/DEBIAN/md5sums"

  local installed_size
  installed_size="$(du -k -s --apparent-size --exclude=DEBIAN "$stage" | cut -f1)"
  sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$depends|" \
    "$source_dir/packaging/debian/$package/control" >"$stage/DEBIAN/control"

  local deb="$out_dir/${package}_${version}_${arch}.deb"
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
  echo "$deb"
}

build_package tended-agent "tended-agent tended-apt-engine" "tended-agent.service" agent.yaml
build_package tended-coordinator "tended-coordinator tendedctl" "tended-coordinator.service" \
  coordinator.yaml
