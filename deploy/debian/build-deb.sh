#!/usr/bin/env bash
# Builds tdhook's Debian package: `make deb` runs this from a build tree.
#
#   deploy/debian/build-deb.sh SRCDIR OUTDIR
#
# A build of its own in OUTDIR/deb-build, configured as Debian wants it
# (--prefix=/usr --sysconfdir=/etc --localstatedir=/var), installed into a
# staging root, arranged as a .deb (man pages and changelog compressed, the
# binary stripped, the guides and the example config in
# /usr/share/doc/tdhook, the units in /lib/systemd/system) and packed with
# dpkg-deb.  Prints the package's path.  Needs dpkg-dev (dpkg-shlibdeps) and
# fakeroot.
set -euo pipefail

src=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
build=$out/deb-build
root=$out/deb-root
arch=$(dpkg --print-architecture)
version=$(sed -n 's/^AC_INIT(\[tdhook\], \[\([^]]*\)\].*/\1/p' "$src/configure.ac")-1

say() { printf '%s\n' "$*" >&2; }
say "make deb: tdhook $version for $arch"
rm -rf "$build" "$root"
mkdir -p "$build"
if ! (cd "$build" && "$src/configure" --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
    CFLAGS="-O2 -g" && make -j"$(nproc)" &&
    make install DESTDIR="$root" systemdsystemunitdir=/lib/systemd/system) >"$out/deb-build.log" 2>&1
then
    say "make deb: the build failed; the last lines of $out/deb-build.log:"
    tail -n 30 "$out/deb-build.log" >&2
    exit 1
fi

doc=$root/usr/share/doc/tdhook
mkdir -p "$doc/examples"
mv "$root/etc/tdhook/tdhook.yaml.example" "$doc/examples/tdhook.yaml"
rmdir "$root/etc/tdhook" "$root/etc" 2>/dev/null || true
cp "$src/deploy/debian/copyright" "$doc/copyright"
sed "s/@VERSION@/$version/" "$src/deploy/debian/changelog" | gzip -9n >"$doc/changelog.Debian.gz"
find "$root/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9n {} +
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/tdhook"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/usr/bin/tdhook"

# The libraries the binary links, as package dependencies.
mkdir -p "$out/deb-shlibs/debian"
printf 'Source: tdhook\n\nPackage: tdhook\nArchitecture: any\n' >"$out/deb-shlibs/debian/control"
depends=$(cd "$out/deb-shlibs" && dpkg-shlibdeps -O "$root/usr/bin/tdhook" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { say "make deb: dpkg-shlibdeps found no dependencies"; exit 1; }

mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@DEPENDS@/$depends/" "$src/deploy/debian/control.in" >"$root/DEBIAN/control"
install -m 0755 "$src/deploy/debian/postinst" "$src/deploy/debian/postrm" "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort |
    xargs md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/md5sums"

deb=$out/tdhook_${version}_$arch.deb
fakeroot dpkg-deb --build -Zxz "$root" "$deb" >/dev/null
printf '%s\n' "$deb"
