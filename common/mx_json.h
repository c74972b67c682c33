/*
 * mx_json.h - Matrix canonical JSON and small cJSON helpers.
 *
 * cJSON keeps insertion order and prints large integers as floats, so signing
 * (Matrix "Canonical JSON") and the audit chain use this serializer instead:
 * keys sorted by codepoint (bytewise on UTF-8), no insignificant whitespace,
 * integers only within +-(2^53-1), shortest string escapes.
 * Borrowed/owned: every `const cJSON *` argument is borrowed; outputs go into
 * a caller's mx_buf. Lowest layer.
 */
#ifndef MX_JSON_H
#define MX_JSON_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "mx_buf.h"
#include "mx_err.h"

/* Appends the canonical form of v to out. Fails on floats, out-of-range
 * integers or non-JSON values, naming the path in err. */
mx_err mx_json_canonical(const cJSON *v, struct mx_buf *out, char *err);

/* Canonical form for signing: the top-level "signatures" and "unsigned"
 * members are left out (only at the top level). */
mx_err mx_json_canonical_for_signing(const cJSON *obj, struct mx_buf *out, char *err);

/* Appends s as a JSON string literal (with quotes), canonical escapes. */
mx_err mx_json_add_string(struct mx_buf *out, const char *s);

/* Lookups that return NULL unless the member exists with that type. */
const char *mx_json_str(const cJSON *obj, const char *key);
const cJSON *mx_json_obj(const cJSON *obj, const char *key);
const cJSON *mx_json_arr(const cJSON *obj, const char *key);
/* True and *out set when obj[key] is an integer-valued number. */
int mx_json_int(const cJSON *obj, const char *key, int64_t *out);
/* cJSON_Delete after zeroing every string in the tree (keys and values):
 * for trees that held secrets (room keys, decrypted to-device content).
 * NULL is fine. */
void mx_json_delete_wiped(cJSON *j);
/* Follows a dotted path ("content.m.relates_to" is NOT split: use an array of
 * keys). Returns NULL when any step is missing. */
const cJSON *mx_json_path(const cJSON *obj, const char *const *keys, int n);

#endif
