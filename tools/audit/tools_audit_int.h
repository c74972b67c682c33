/*
 * tools/audit/tools_audit_int.h - shared by the files of tools/audit: the
 * handle, the record hash and the Ed25519 key helpers. Not for other modules.
 * Layer: tools/; common/ + OpenSSL only.
 */
#ifndef TOOLS_AUDIT_INT_H
#define TOOLS_AUDIT_INT_H

#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>

#include "tools_audit.h"

/* Leaf domain separation (RFC 6962 style 0x00) plus a version string. */
#define AUDIT_DOMAIN "\x00mxfleet-audit-v1"
#define AUDIT_DOMAIN_LEN 17

struct tools_audit {
  pthread_mutex_t mu;
  sqlite3 *db;
  int readonly;             /* the database could only be opened read-only */
  char *device;
  char *db_path;
  char *ckpt_path;          /* latest checkpoint (text form) */
  char *ckpt_log_path;      /* every checkpoint, appended */
  char *key_path;
  EVP_PKEY *key;            /* loaded on first checkpoint */
  EVP_MD_CTX *md;
  EVP_MD *sha256;
  sqlite3_stmt *st_head;
  sqlite3_stmt *st_insert;
  int64_t last_used_ms;     /* mx_mono_ms of the last append (closes when idle) */
};

/* hash = SHA-256(domain || seq (8 bytes BE) || prev || record), with the
 * caller's digest context (one per thread). */
int audit_hash_md(EVP_MD_CTX *md, const EVP_MD *sha256, int64_t seq, const uint8_t prev[TOOLS_AUDIT_HASH_LEN],
                  const void *rec, size_t n, uint8_t out[TOOLS_AUDIT_HASH_LEN]);
int audit_hash(struct tools_audit *a, int64_t seq, const uint8_t prev[TOOLS_AUDIT_HASH_LEN], const void *rec,
               size_t n, uint8_t out[TOOLS_AUDIT_HASH_LEN]);
/* Loads or creates the raw 32-byte Ed25519 seed at a->key_path (0600). */
mx_err audit_key_load(struct tools_audit *a, char *err);
/* ISO-8601 UTC with milliseconds: 2026-11-21T20:05:00.123Z (25 bytes). */
void audit_iso_time(int64_t ms, char out[32]);

#endif
