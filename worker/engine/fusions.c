/* Which decode-step fusions a session uses (engine_internal.h sf_fusion).
 * All are on unless SCANFLASH_UNFUSED names them: a comma-separated list
 * of dt_proj, conv, norm_pair, rotary_pair, persistent, or "all";
 * SCANFLASH_PERSISTENT=0 is the same as naming persistent. The
 * switches are for measuring what each fusion is worth
 * (bench/notes-decode.md); the results are the same up to rounding. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static const struct {
  const char *name;
  int bit;
} fusion_names[] = {
    {"dt_proj", SF_FUSE_DT_PROJ},
    {"conv", SF_FUSE_CONV},
    {"norm_pair", SF_FUSE_NORM_PAIR},
    {"rotary_pair", SF_FUSE_ROTARY_PAIR},
    {"persistent", SF_FUSE_PERSISTENT},
};

sf_status sf_engine_fusions(int *mask, sf_error *err) {
  const char *persistent = getenv("SCANFLASH_PERSISTENT");
  *mask = SF_FUSE_ALL;
  if (persistent && !strcmp(persistent, "0")) *mask &= ~SF_FUSE_PERSISTENT;
  const char *env = getenv("SCANFLASH_UNFUSED");
  if (!env || !*env) return SF_OK;
  const char *p = env;
  while (*p) {
    const size_t len = strcspn(p, ",");
    int bit = -1;
    if (len == 3 && !strncmp(p, "all", 3)) bit = SF_FUSE_ALL;
    for (size_t i = 0; bit < 0 && i < sizeof fusion_names / sizeof fusion_names[0]; i++)
      if (strlen(fusion_names[i].name) == len && !strncmp(p, fusion_names[i].name, len)) bit = fusion_names[i].bit;
    if (bit < 0 && len > 0)
      return sf_fail(err, SF_ERR_ARG,
                     "SCANFLASH_UNFUSED=%s: unknown fusion '%.*s' (dt_proj, conv, norm_pair, rotary_pair, persistent, all)",
                     env, (int)len, p);
    if (bit > 0) *mask &= ~bit;
    p += len;
    if (*p == ',') p++;
  }
  return SF_OK;
}
