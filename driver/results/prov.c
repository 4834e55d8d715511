/* Provenance (root attributes) and small file helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "results/results_internal.h"
#include "scanflash/files.h"
#include "scanflash/version.h"

static const char *const prov_names[RS_PROV_NSTR] = {
    "tool_version", "git_sha",      "build_features", "spec_text", "spec_sha256", "dataset_sha256",
    "tokenizer_sha256", "slurm_job_id", "created",   "host",        "sources"};

const char *rs_prov_str_name(int i) { return prov_names[i]; }

char **rs_prov_str(rs_prov *p, int i) {
  switch (i) {
    case 0: return &p->tool_version;
    case 1: return &p->git_sha;
    case 2: return &p->build_features;
    case 3: return &p->spec_text;
    case 4: return &p->spec_sha256;
    case 5: return &p->dataset_sha256;
    case 6: return &p->tokenizer_sha256;
    case 7: return &p->slurm_job_id;
    case 8: return &p->created;
    case 9: return &p->host;
    default: return &p->sources;
  }
}

void rs_prov_free(rs_prov *p) {
  for (int i = 0; i < RS_PROV_NSTR; i++) free(*rs_prov_str(p, i));
  memset(p, 0, sizeof *p);
}

static sf_status set_str(rs_prov *p, int i, const char *v, sf_error *err) {
  char **slot = rs_prov_str(p, i);
  free(*slot);
  *slot = strdup(v ? v : "");
  if (!*slot) return sf_fail(err, SF_ERR_NOMEM, "out of memory (provenance)");
  return SF_OK;
}

sf_status rs_prov_from(rs_prov *p, const sf_results_provenance *in, sf_error *err) {
  sf_results_provenance def = {0};
  if (!in) in = &def;
  memset(p, 0, sizeof *p);
  p->schema_version = SF_RESULTS_SCHEMA_VERSION;
  p->world_size = in->world_size;

  char created[32];
  if (!in->created) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  char host[256] = "";
  if (!in->host) {
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    host[sizeof host - 1] = '\0';
  }
  char spec_sha[65] = "";
  if (!in->spec_sha256 && in->spec_text) sf_sha256_hex(in->spec_text, strlen(in->spec_text), spec_sha);
  const char *job = in->slurm_job_id ? in->slurm_job_id : getenv("SLURM_JOB_ID");

  const char *v[RS_PROV_NSTR] = {
      in->tool_version ? in->tool_version : sf_version(),
      in->git_sha ? in->git_sha : sf_git_sha(),
      in->build_features ? in->build_features : sf_build_features(),
      in->spec_text,
      in->spec_sha256 ? in->spec_sha256 : spec_sha,
      in->dataset_sha256,
      in->tokenizer_sha256,
      job,
      in->created ? in->created : created,
      in->host ? in->host : host,
      in->sources};
  for (int i = 0; i < RS_PROV_NSTR; i++) {
    sf_status rc = set_str(p, i, v[i], err);
    if (rc != SF_OK) {
      rs_prov_free(p);
      return rc;
    }
  }
  return SF_OK;
}

sf_status rs_prov_copy(rs_prov *dst, const rs_prov *src, sf_error *err) {
  memset(dst, 0, sizeof *dst);
  dst->schema_version = src->schema_version;
  dst->world_size = src->world_size;
  for (int i = 0; i < RS_PROV_NSTR; i++) {
    sf_status rc = set_str(dst, i, *rs_prov_str((rs_prov *)src, i), err);
    if (rc != SF_OK) {
      rs_prov_free(dst);
      return rc;
    }
  }
  return SF_OK;
}

void rs_prov_view(const rs_prov *p, sf_results_provenance *out) {
  out->tool_version = p->tool_version;
  out->git_sha = p->git_sha;
  out->build_features = p->build_features;
  out->spec_text = p->spec_text;
  out->spec_sha256 = p->spec_sha256;
  out->dataset_sha256 = p->dataset_sha256;
  out->tokenizer_sha256 = p->tokenizer_sha256;
  out->world_size = p->world_size;
  out->slurm_job_id = p->slurm_job_id;
  out->created = p->created;
  out->host = p->host;
  out->sources = p->sources;
}

/* ---- files ---- */

char *rs_path_plus(const char *path, const char *suffix) {
  size_t n = strlen(path), m = strlen(suffix);
  char *s = malloc(n + m + 1);
  if (!s) return NULL;
  memcpy(s, path, n);
  memcpy(s + n, suffix, m + 1);
  return s;
}

sf_status rs_fsync_path(const char *path, sf_error *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sf_fail(err, SF_ERR_IO, "%s: cannot open to sync: %s", path, strerror(errno));
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  if (rc != 0) return sf_fail(err, SF_ERR_IO, "%s: fsync failed: %s", path, strerror(e));
  return SF_OK;
}

sf_status rs_fsync_dir_of(const char *path, sf_error *err) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return sf_fail(err, SF_ERR_ARG, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sf_fail(err, SF_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
  int rc = fsync(fd);
  int e = errno;
  close(fd);
  /* Some file systems cannot sync a directory: not worth failing a run for. */
  if (rc != 0 && e != EINVAL && e != EROFS && e != EBADF)
    return sf_fail(err, SF_ERR_IO, "%s: fsync failed: %s", dir, strerror(e));
  return SF_OK;
}
