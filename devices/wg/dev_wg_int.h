/*
 * dev_wg_int.h - internals of devices/wg shared by its files (not for other
 * modules): the backend state and the signed HTTP helper.
 */
#ifndef DEV_WG_INT_H
#define DEV_WG_INT_H

#include <pthread.h>

#include <curl/curl.h>

#include "dev_wg.h"
#include "dev_wg_sign.h"

struct dev_wg {
  struct dev_backend base; /* first: the backend pointer is this struct */
  char *url, *data_dir, *device, *db_path;
  uint8_t key[DEV_WG_KEY_LEN];
  int connect_timeout_ms;
  const struct dev_wg_audit_checks *checks; /* borrowed, may be NULL */
  pthread_mutex_t mu;      /* guards `cached` */
  CURL *cached;            /* one reusable handle (keeps the connection warm) */
};

/* One signed request, no retry. timeout_ms bounds the whole transfer;
 * cancel (may be NULL) aborts it when it turns non-zero. */
mx_err dev_wg_http(struct dev_wg *w, const char *method, const char *target, const char *body, size_t n,
                   long timeout_ms, const volatile int *cancel, long *status, struct mx_buf *resp, char *err);
/* Turns the agent's reply to POST /v1/call (HTTP status and body, as a
 * possibly compromised device sent them) into r; 401/413/503 and anything
 * unexpected are errors naming the device. Also run by tests/fuzz. */
mx_err dev_wg_fill_result(const char *device, long status, const char *body, struct dev_result *r, char *err);
/* GET with retries for transient failures (idempotent reads only). */
mx_err dev_wg_get(struct dev_wg *w, const char *target, long timeout_ms, long *status, struct mx_buf *resp,
                  char *err);

#endif
