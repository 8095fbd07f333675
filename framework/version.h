/* version: the build stamp of the linked pmi, for `pmi info` and the provenance that every
 * results file records.
 *   pmi_version     the release version, PMI_VERSION below
 *   pmi_git_commit  the 12-digit git commit the binary was built from, "<commit>-dirty" when
 *                   tracked files differed from that commit, "unknown" outside a git work tree
 * Both are defined in build/version.c, which the Makefile generates with scripts/version.sh
 * before every build and rewrites only when the stamp changes: after a new commit `make`
 * relinks pmi (and the test binaries) with the new stamp; without one it does nothing. They
 * are variables of one generated object rather than a macro on every compile, so no object
 * can carry an older stamp than the binary it is linked into. */
#ifndef PMI_VERSION_H
#define PMI_VERSION_H

#define PMI_VERSION "0.1.0"   /* the release version */

extern const char pmi_version[];
extern const char pmi_git_commit[];

#endif
