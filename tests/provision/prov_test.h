/*
 * prov_test.h - shared by the onboarding integration tests: plain-HTTP
 * Matrix callbacks standing in for the bot's E2EE ones, and a homeserver
 * call helper. Test code; *resp is owned by the caller (cJSON_Delete).
 */
#ifndef PROV_TEST_H
#define PROV_TEST_H

#include "prov_int.h"

struct pt_matrix {
  int bootstraps;
  int rooms_created;
  char last_room[256];
};

void pt_matrix_ops(struct pt_matrix *m, struct dev_prov_matrix_ops *ops);
/* path_fmt has one %s for arg (URL-escaped), or is a literal path when arg
 * is NULL; returns the status, -1 on a transport failure. */
long pt_call(const char *hs, const char *method, const char *path_fmt, const char *arg, const char *token,
             const cJSON *body, cJSON **resp);

#endif
