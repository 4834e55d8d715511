/* Build provenance, filled in at configure/build time (common/version.c.in). */
#ifndef SCANFLASH_VERSION_H
#define SCANFLASH_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

const char *sf_version(void);        /* "0.1.0" */
const char *sf_git_sha(void);        /* full sha, "+dirty" when the tree had changes; "unknown" outside git */
const char *sf_build_features(void); /* "cuda openmp sanitize ..." */

#ifdef __cplusplus
}
#endif
#endif
