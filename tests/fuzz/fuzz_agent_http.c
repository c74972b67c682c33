/*
 * tests/fuzz/fuzz_agent_http.c - mxfleet-agent's request handling as the
 * network delivers it (devices/agent/agent_http.c agent_serve, without a
 * socket): request signature check (devices/wg/sign), routing, and the
 * handlers (/v1/call with the agent's own manifest decision, approvals and
 * audit; /v1/audit?since=; /v1/audit/checkpoint; /v1/health).
 *
 * Input: "METHOD TARGET\nTIMESTAMP\nNONCE\nSIGNATURE\n\nBODY". A signature
 * line "SIGN" makes the harness sign the request with the device key, as
 * the bot would, so mutations reach the handlers behind the HMAC; any other
 * value is checked as sent (an attacker on the WireGuard network).
 * The agent's manifest enables only fs.* tools: reads confined to a
 * licence directory, writes to a directory that does not exist; no program
 * runs. The audit database lives in a scratch directory.
 * Properties: every answer is a JSON object with a status the front could
 * send; an unsigned request never reaches a handler (401/503 only).
 */
#include "fuzz_util.h"

#include <sys/stat.h>

#include "agent_config.h"
#include "agent_int.h"
#include "dev_local.h"
#include "mx_crypto.h"
#include "tools_audit.h"

#define NOW_S 1765100000
static const uint8_t key[DEV_WG_KEY_LEN] = "fuzz-device-key-32-bytes-long!!";

/* Fixed roots, so seeds can name files: a read root every Debian system has
 * (base-files) and a write root that does not exist, so fs.write gets as far
 * as opening and never writes. */
#define READ_ROOT "/usr/share/common-licenses"
#define WRITE_ROOT "/nonexistent/mxfleet-fuzz"

static struct agent *agent(void)
{
  static struct agent *a;
  static struct agent_config cfg;
  static char data_dir[600];
  char err[MX_ERRBUF_LEN];
  if (a)
    return a;
  snprintf(data_dir, sizeof(data_dir), "%s/agent", fuzz_scratch_dir());
  cfg.device = "fuzz-device";
  cfg.data_dir = data_dir;
  cfg.max_body = 1 << 20;
  a = calloc(1, sizeof(*a));
  FUZZ_CHECK(a != NULL);
  a->cfg = &cfg;
  a->listen_fd = -1;
  memcpy(a->key, key, sizeof(key));
  cJSON *mj = cJSON_Parse("{\"version\":1,\"paths\":{\"read\":[\"" READ_ROOT "\"],\"write\":[\"" WRITE_ROOT "\"]},"
                          "\"tools\":{\"fs.read\":{},\"fs.list\":{},\"fs.stat\":{},\"fs.write\":{\"approval\":\"ask\"}}}");
  FUZZ_CHECK(mj && tools_policy_parse(mj, "fuzz.json", &a->manifest, err) == MX_OK);
  cJSON_Delete(mj);
  struct tools_audit_opts ao = {.data_dir = data_dir, .device = cfg.device};
  struct dev_local_opts lo = {.open_path = tools_policy_open_cb, .open_ctx = a->manifest};
  FUZZ_CHECK(mkdir(data_dir, 0700) == 0);
  if (tools_audit_open(&ao, &a->audit, err) || dev_local_new(&lo, &a->local, err)) {
    fprintf(stderr, "fuzz_agent_http: %s\n", err);
    abort();
  }
  a->started_ms = NOW_S * 1000LL;
  return a;
}

/* Next line of *p (cut at '\n', which is replaced by NUL); NULL at the end. */
static char *next_line(char **p, char *end)
{
  if (*p >= end)
    return NULL;
  char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
  if (!nl)
    nl = end;
  *nl = '\0';
  *p = nl + 1;
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct agent *a = agent();
  char *text = fuzz_cstr(data, size), *p = text, *end = text + size;
  char *request = next_line(&p, end), *ts = next_line(&p, end), *nonce = next_line(&p, end);
  char *sig = next_line(&p, end);
  (void)next_line(&p, end); /* the blank line before the body */
  if (!request || !strchr(request, ' ')) {
    free(text);
    return 0;
  }
  char *target = strchr(request, ' ');
  *target++ = '\0';
  char url[4096], since[64] = "";
  snprintf(url, sizeof(url), "%.*s", (int)strcspn(target, "?"), target);
  const char *q = strstr(target, "?since=");
  if (q)
    snprintf(since, sizeof(since), "%.*s", (int)strcspn(q + 7, "&"), q + 7);
  const char *body = p < end ? p : "";
  size_t body_len = p < end ? (size_t)(end - p) : 0;

  struct dev_wg_sig good;
  int signed_here = sig && strcmp(sig, "SIGN") == 0 && ts && nonce;
  if (signed_here) {
    uint8_t h[MX_SHA256_LEN];
    mx_sha256(body, body_len, h);
    dev_wg_sign_raw(key, request, target, ts, nonce, h, good.sig);
    sig = good.sig;
  }
  /* A fresh nonce cache per input: a replay is a property of one run. */
  a->nonces = dev_wg_nonces_new(0);
  FUZZ_CHECK(a->nonces != NULL);
  struct agent_request r = {.method = request, .url = url, .target = target, .ts = ts, .nonce = nonce,
                            .sig = sig, .since = q ? since : NULL, .body = body, .body_len = body_len,
                            .now_s = NOW_S};
  cJSON *reply = NULL;
  int status = agent_serve(a, &r, &reply);
  FUZZ_CHECK(status >= 200 && status <= 599);
  FUZZ_CHECK(reply == NULL || cJSON_IsObject(reply));
  if (!signed_here)
    FUZZ_CHECK(status == 401 || status == 503);
  cJSON_Delete(reply);
  dev_wg_nonces_free(a->nonces);
  a->nonces = NULL;
  free(text);
  return 0;
}
