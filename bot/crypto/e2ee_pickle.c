/*
 * bot/crypto/e2ee_pickle.c - the per-install pickle key and (un)pickling of
 * every libolm object. libolm destroys the input of unpickle, so inputs are
 * copied first; the key file is created once with mode 0600 (link(2) makes
 * the creation atomic when several identities start at the same time).
 * Layer: bot/crypto; libolm + common only. Never logs a pickle or the key.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <olm/inbound_group_session.h>
#include <olm/outbound_group_session.h>

#include "e2ee_int.h"
#include "mx_crypto.h"
#include "mx_util.h"

void *e2ee_alloc(size_t n)
{
  return calloc(1, n);
}

mx_err e2ee_olm_fail(char *err, const char *what, const char *olm_msg)
{
  return mx_fail(MX_ERR_CRYPTO, err, "%s: libolm says '%s'", what, olm_msg ? olm_msg : "?");
}

static mx_err read_key(const char *path, uint8_t key[E2EE_PICKLE_KEY_LEN], char *err)
{
  struct stat sb;
  if (stat(path, &sb) != 0)
    return mx_fail(MX_ERR_IO, err, "%s: cannot stat: %s", path, strerror(errno));
  if (sb.st_mode & 077)
    return mx_fail(MX_ERR_DENIED, err, "%s: expected mode 0600, got %04o", path, (unsigned)(sb.st_mode & 0777));
  struct mx_buf b = MX_BUF_INIT(1024);
  mx_err rc = mx_file_read(path, 1024, &b, err);
  if (rc)
    return rc;
  if (b.len != E2EE_PICKLE_KEY_LEN)
    rc = mx_fail(MX_ERR_INVALID, err, "%s: expected %d bytes of key, got %zu", path, E2EE_PICKLE_KEY_LEN, b.len);
  else
    memcpy(key, b.buf, E2EE_PICKLE_KEY_LEN);
  mx_buf_release(&b);
  return rc;
}

mx_err e2ee_pickle_key_load(const char *data_dir, uint8_t key[E2EE_PICKLE_KEY_LEN], char *err)
{
  char *path = mx_path_join(data_dir, "e2ee-pickle.key");
  char *tmp = mx_path_join(data_dir, "e2ee-pickle.key.new");
  mx_err rc = (path && tmp) ? MX_OK : MX_ERR_NOMEM;
  if (!rc && access(path, F_OK) != 0) {
    uint8_t fresh[E2EE_PICKLE_KEY_LEN];
    char tmpname[4096], uniq[13];
    /* identities start on several threads of one process: the temp name
     * must be unique per call, not only per process */
    rc = mx_random_alnum(uniq, 12);
    snprintf(tmpname, sizeof(tmpname), "%s.%ld.%s", tmp, (long)getpid(), uniq);
    if (!rc)
      rc = mx_random_bytes(fresh, sizeof(fresh));
    if (!rc)
      rc = mx_file_write(tmpname, fresh, sizeof(fresh), 0600, err);
    /* link() fails with EEXIST when another identity won the race: use its key */
    if (!rc && link(tmpname, path) != 0 && errno != EEXIST)
      rc = mx_fail(MX_ERR_IO, err, "%s: cannot create: %s", path, strerror(errno));
    unlink(tmpname);
    memset(fresh, 0, sizeof(fresh));
  }
  if (!rc)
    rc = read_key(path, key, err);
  free(path);
  free(tmp);
  return rc;
}

/* One body for the four pickle functions: len/pickle/error per type. */
#define PICKLE_BODY(lenfn, picklefn, errfn, obj)                                      \
  size_t n = lenfn(obj);                                                             \
  char *out = malloc(n + 1);                                                         \
  if (!out)                                                                          \
    return NULL;                                                                     \
  size_t r = picklefn(obj, e->pickle_key, E2EE_PICKLE_KEY_LEN, out, n);              \
  if (r == olm_error()) {                                                            \
    free(out);                                                                       \
    return NULL;                                                                     \
  }                                                                                  \
  out[r] = '\0';                                                                     \
  return out;

char *e2ee_pickle_account(struct mx_e2ee *e)
{
  PICKLE_BODY(olm_pickle_account_length, olm_pickle_account, olm_account_last_error, e->acct)
}

char *e2ee_pickle_session(struct mx_e2ee *e, OlmSession *s)
{
  PICKLE_BODY(olm_pickle_session_length, olm_pickle_session, olm_session_last_error, s)
}

char *e2ee_pickle_outbound(struct mx_e2ee *e, OlmOutboundGroupSession *s)
{
  PICKLE_BODY(olm_pickle_outbound_group_session_length, olm_pickle_outbound_group_session,
              olm_outbound_group_session_last_error, s)
}

char *e2ee_pickle_inbound(struct mx_e2ee *e, OlmInboundGroupSession *s)
{
  PICKLE_BODY(olm_pickle_inbound_group_session_length, olm_pickle_inbound_group_session,
              olm_inbound_group_session_last_error, s)
}

#define UNPICKLE_BODY(type, sizefn, initfn, unpicklefn, clearfn)                      \
  void *mem = malloc(sizefn());                                                      \
  char *copy = mx_strdup(pickle);                                                    \
  if (!mem || !copy) {                                                               \
    free(mem);                                                                       \
    free(copy);                                                                      \
    return NULL;                                                                     \
  }                                                                                  \
  type *o = initfn(mem);                                                             \
  size_t len = strlen(copy);                                                         \
  size_t r = unpicklefn(o, e->pickle_key, E2EE_PICKLE_KEY_LEN, copy, len);           \
  memset(copy, 0, len); /* libolm decrypts in place: it held the private keys */     \
  free(copy);                                                                        \
  if (r == olm_error()) {                                                            \
    clearfn(o);                                                                      \
    free(mem);                                                                       \
    return NULL;                                                                     \
  }                                                                                  \
  return o;

OlmAccount *e2ee_unpickle_account(struct mx_e2ee *e, const char *pickle)
{
  UNPICKLE_BODY(OlmAccount, olm_account_size, olm_account, olm_unpickle_account, olm_clear_account)
}

OlmSession *e2ee_unpickle_session(struct mx_e2ee *e, const char *pickle)
{
  UNPICKLE_BODY(OlmSession, olm_session_size, olm_session, olm_unpickle_session, olm_clear_session)
}

OlmOutboundGroupSession *e2ee_unpickle_outbound(struct mx_e2ee *e, const char *pickle)
{
  UNPICKLE_BODY(OlmOutboundGroupSession, olm_outbound_group_session_size, olm_outbound_group_session,
                olm_unpickle_outbound_group_session, olm_clear_outbound_group_session)
}

OlmInboundGroupSession *e2ee_unpickle_inbound(struct mx_e2ee *e, const char *pickle)
{
  UNPICKLE_BODY(OlmInboundGroupSession, olm_inbound_group_session_size, olm_inbound_group_session,
                olm_unpickle_inbound_group_session, olm_clear_inbound_group_session)
}

/* Fresh libolm objects; NULL when out of memory. */
OlmAccount *e2ee_new_account(void)
{
  void *m = malloc(olm_account_size());
  return m ? olm_account(m) : NULL;
}

OlmSession *e2ee_new_session(void)
{
  void *m = malloc(olm_session_size());
  return m ? olm_session(m) : NULL;
}

OlmOutboundGroupSession *e2ee_new_outbound(void)
{
  void *m = malloc(olm_outbound_group_session_size());
  return m ? olm_outbound_group_session(m) : NULL;
}

OlmInboundGroupSession *e2ee_new_inbound(void)
{
  void *m = malloc(olm_inbound_group_session_size());
  return m ? olm_inbound_group_session(m) : NULL;
}

void e2ee_free_account(OlmAccount *a)
{
  if (a) {
    olm_clear_account(a);
    free(a);
  }
}

void e2ee_free_session(OlmSession *s)
{
  if (s) {
    olm_clear_session(s);
    free(s);
  }
}

void e2ee_free_outbound(OlmOutboundGroupSession *s)
{
  if (s) {
    olm_clear_outbound_group_session(s);
    free(s);
  }
}

void e2ee_free_inbound(OlmInboundGroupSession *s)
{
  if (s) {
    olm_clear_inbound_group_session(s);
    free(s);
  }
}
