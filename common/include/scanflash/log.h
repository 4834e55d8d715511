/* Logging to stderr with a level and, once set, the MPI rank as prefix. */
#ifndef SCANFLASH_LOG_H
#define SCANFLASH_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sf_log_level { SF_LOG_ERROR, SF_LOG_WARN, SF_LOG_INFO, SF_LOG_DEBUG } sf_log_level;

void sf_log_set_level(sf_log_level level);
/* Reads SCANFLASH_LOG=error|warn|info|debug; unknown values leave it unchanged. */
void sf_log_level_from_env(void);
void sf_log_set_rank(int rank); /* -1: no rank prefix */
void sf_log(sf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SF_LOG_E(...) sf_log(SF_LOG_ERROR, __VA_ARGS__)
#define SF_LOG_W(...) sf_log(SF_LOG_WARN, __VA_ARGS__)
#define SF_LOG_I(...) sf_log(SF_LOG_INFO, __VA_ARGS__)
#define SF_LOG_D(...) sf_log(SF_LOG_DEBUG, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
