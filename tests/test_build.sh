#!/bin/sh
# Tests of the build conventions (Makefile, scripts/version.sh, scripts/deps.sh --check): the
# build stamp follows the commit and is rewritten only when it changes, the binary under test
# carries the current commit, a second make does nothing, the sanitizer build has a binary of
# its own, and a missing library is named with its package before anything is compiled. Run
# from the repository root by scripts/run-tests.sh (make test); prints one TAP line per check.
root=$(pwd -P)
pmi=${PMI_BIN:-./pmi}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# make without the calling make's jobserver; PMI_MAKEARGS carries its SAN= and TORCH_DIR=.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$root" $PMI_MAKEARGS "$@"; }
check() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
inode() { stat -c %i "$1" 2>/dev/null; }

# scripts/version.sh in a scratch repository: commit, unchanged, new commit, dirty, no git.
repo="$tmp/repo"; mkdir "$repo"
( cd "$repo" && git init -q && git config user.email t@t && git config user.name t &&
  echo a > f && git add f && git commit -qm one ) >/dev/null 2>&1
stamp() { ( cd "$1" && "$root/scripts/version.sh" "$tmp/version.c" ) && sed -n 's/^const char pmi_git_commit\[\] = "\(.*\)";/\1/p' "$tmp/version.c"; }
c1=$(stamp "$repo"); i1=$(inode "$tmp/version.c")
[ "$c1" = "$(git -C "$repo" rev-parse --short=12 HEAD)" ]; check $? "version.sh stamps the commit ($c1)"
c2=$(stamp "$repo")
[ "$c2" = "$c1" ] && [ "$(inode "$tmp/version.c")" = "$i1" ]; check $? "version.sh leaves an unchanged stamp file alone"
git -C "$repo" commit -q --allow-empty -m two
c3=$(stamp "$repo")
[ "$c3" = "$(git -C "$repo" rev-parse --short=12 HEAD)" ] && [ "$c3" != "$c1" ]; check $? "version.sh follows a new commit ($c3)"
echo b > "$repo/f"
[ "$(stamp "$repo")" = "$c3-dirty" ]; check $? "version.sh marks modified tracked files -dirty"
mkdir "$tmp/plain"
[ "$(stamp "$tmp/plain")" = unknown ]; check $? "version.sh outside a git work tree says unknown"
grep -q '^const char pmi_version\[\] = PMI_VERSION;' "$tmp/version.c"; check $? "version.sh takes the version from version.h"

# The binary under test carries the current commit.
head=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
"$pmi" info 2>/dev/null | head -1 | grep -q "(commit $head\(-dirty\)\?)"; check $? "$pmi info shows the current commit $head"

# A make right after a build does nothing: no compile, no link, the binary untouched.
mk >/dev/null 2>&1
i0=$(inode "$pmi"); t0=$(stat -c %Y "$pmi")
out=$(mk 2>&1)
! printf '%s\n' "$out" | grep -q -- ' -o ' && [ "$(inode "$pmi")" = "$i0" ] && [ "$(stat -c %Y "$pmi")" = "$t0" ]
check $? "a second make does nothing"

# The sanitizer build links its own binary and test binaries, never ./pmi.
out=$(mk -n SAN=1 2>&1)
printf '%s\n' "$out" | grep -q -- '-o build-san/pmi ' && ! printf '%s\n' "$out" | grep -q -- '-o pmi '
check $? "make SAN=1 links build-san/pmi, not ./pmi"
out=$(mk -n SAN=1 build-san/tests/test_pmi 2>&1)
printf '%s\n' "$out" | grep -q -- '-o build-san/tests/test_pmi '; check $? "make SAN=1 has its own test binaries"

# A missing library is named with its package, and nothing is compiled (a scratch build folder).
mkdir "$tmp/bin"
printf '#!/bin/sh\ncase " $* " in *" inih "*) exit 1;; esac\nexec %s "$@"\n' "$(command -v pkg-config)" > "$tmp/bin/pkg-config"
chmod +x "$tmp/bin/pkg-config"
out=$(PATH="$tmp/bin:$PATH" mk BUILD="$tmp/b" "$tmp/b/config.o" 2>&1); rc=$?
[ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q 'missing inih (Debian: libinih-dev): run `make deps` or `apt-get install libinih-dev`' &&
  [ ! -e "$tmp/b/config.o" ]
check $? "a missing library stops make with its package and \`make deps\`"
out=$(mk BUILD="$tmp/b" TORCH_DIR="$tmp/no-torch" "$tmp/b/config.o" 2>&1); rc=$?
[ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q "missing libtorch: TORCH_DIR=$tmp/no-torch has no include/" && [ ! -e "$tmp/b/config.o" ]
check $? "a TORCH_DIR without libtorch's headers stops make"
