/*
 * agent_api.c - the read-only endpoints of mxfleet-agent: /v1/health,
 * /v1/audit/checkpoint (signs a fresh checkpoint of the agent's own chain)
 * and /v1/audit?since=SEQ (records after SEQ, oldest first, at most
 * AGENT_AUDIT_PAGE per reply). Layer: devices/agent. *reply is owned by the
 * caller; record arrays from tools_audit are consumed into the reply.
 */
#include "agent_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "mx_crypto.h"
#include "mx_util.h"

#define AGENT_AUDIT_PAGE 500

int agent_handle_health(struct agent *a, cJSON **reply)
{
  char err[MX_ERRBUF_LEN];
  int64_t size = 0;
  uint8_t head[TOOLS_AUDIT_HASH_LEN];
  if (tools_audit_head(a->audit, &size, head, err))
    return agent_error(MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable", err, reply);
  *reply = cJSON_CreateObject();
  if (!*reply)
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
  cJSON_AddBoolToObject(*reply, "ok", 1);
  cJSON_AddStringToObject(*reply, "device", a->cfg->device);
  cJSON_AddStringToObject(*reply, "version", MXFLEET_VERSION);
  cJSON_AddNumberToObject(*reply, "uptime_s", (double)((mx_now_ms() - a->started_ms) / 1000));
  cJSON_AddNumberToObject(*reply, "audit_size", (double)size);
  return MHD_HTTP_OK;
}

int agent_handle_checkpoint(struct agent *a, cJSON **reply)
{
  char err[MX_ERRBUF_LEN], key_id[17];
  struct tools_audit_checkpoint cp;
  struct mx_buf text = MX_BUF_INIT(MX_BUF_MAX_SMALL), pub = MX_BUF_INIT(256);
  char head[2 * TOOLS_AUDIT_HASH_LEN + 1];
  uint8_t pk[32];
  int status = MHD_HTTP_OK;
  if (tools_audit_checkpoint(a->audit, &cp, err) || tools_audit_public_key(a->audit, pk, key_id, err)) {
    status = agent_error(MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable", err, reply);
    goto done;
  }
  if (tools_audit_checkpoint_text(&cp, &text) || mx_b64_encode(pk, sizeof(pk), &pub) || !(*reply = cJSON_CreateObject())) {
    status = agent_error(MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot format the checkpoint", reply);
    goto done;
  }
  cJSON_AddStringToObject(*reply, "origin", cp.origin);
  cJSON_AddNumberToObject(*reply, "size", (double)cp.size);
  mx_hex(cp.head, sizeof(cp.head), head);
  cJSON_AddStringToObject(*reply, "head", head); /* hex, like the records' "hash" */
  cJSON_AddNumberToObject(*reply, "time_ms", (double)cp.time_ms);
  cJSON_AddStringToObject(*reply, "text", mx_buf_cstr(&text));
  cJSON_AddStringToObject(*reply, "public_key", mx_buf_cstr(&pub));
  cJSON_AddStringToObject(*reply, "key_id", key_id);
done:
  mx_buf_release(&text);
  mx_buf_release(&pub);
  return status;
}

static int parse_since(const char *s, int64_t *out)
{
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s ? s : "0", &end, 10);
  if (errno || !end || *end || v < 0)
    return 0;
  *out = v;
  return 1;
}

int agent_handle_audit(struct agent *a, const char *since_txt, cJSON **reply)
{
  char err[MX_ERRBUF_LEN];
  int64_t since = 0, size = 0;
  uint8_t head[TOOLS_AUDIT_HASH_LEN];
  cJSON *recs = NULL;
  if (!parse_since(since_txt, &since))
    return agent_error(MHD_HTTP_BAD_REQUEST, "bad_request", "since: expected a sequence number >= 0", reply);
  if (tools_audit_head(a->audit, &size, head, err))
    return agent_error(MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable", err, reply);
  int64_t want = size > since ? size - since : 0;
  if (want > 0 && tools_audit_recent(a->audit, (int)want, &recs, err))
    return agent_error(MHD_HTTP_SERVICE_UNAVAILABLE, "audit_unavailable", err, reply);
  /* recent() gives the newest `want` records, oldest first: keep a page. */
  while (recs && cJSON_GetArraySize(recs) > AGENT_AUDIT_PAGE)
    cJSON_DeleteItemFromArray(recs, cJSON_GetArraySize(recs) - 1);
  *reply = cJSON_CreateObject();
  if (!*reply) {
    cJSON_Delete(recs);
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
  }
  cJSON_AddNumberToObject(*reply, "size", (double)size);
  cJSON_AddBoolToObject(*reply, "more", want > AGENT_AUDIT_PAGE);
  cJSON_AddItemToObject(*reply, "records", recs ? recs : cJSON_CreateArray());
  return MHD_HTTP_OK;
}
