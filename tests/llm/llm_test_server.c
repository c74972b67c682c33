/*
 * llm_test_server.c - scripted provider process management for tests; see
 * llm_test_server.h. Polls with deadlines, never sleeps and hopes.
 */
#include "llm_test_server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "mx_buf.h"
#include "mx_util.h"

#define START_DEADLINE_MS 15000

static int read_port(int fd, int64_t deadline)
{
  char buf[64];
  size_t n = 0;
  while (mx_mono_ms() < deadline && n + 1 < sizeof(buf)) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r < 0 && errno != EINTR)
      return -1;
    if (r <= 0)
      continue;
    ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (k <= 0)
      return -1;
    n += (size_t)k;
    buf[n] = '\0';
    int port = 0;
    if (strchr(buf, '\n') && sscanf(buf, "PORT %d", &port) == 1)
      return port;
  }
  return -1;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
  (void)p;
  (void)u;
  return s * n;
}

static int healthy(int port)
{
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
  CURL *c = curl_easy_init();
  long code = 0;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code == 200;
}

int llm_ts_start(struct llm_ts *ts)
{
  memset(ts, 0, sizeof(*ts));
  snprintf(ts->dir, sizeof(ts->dir), "/tmp/mxfleet-llm-XXXXXX");
  if (!mkdtemp(ts->dir))
    return -1;
  snprintf(ts->record, sizeof(ts->record), "%s/requests.jsonl", ts->dir);
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0)
    return -1;
  pid_t parent = getpid();
  ts->pid = fork();
  if (ts->pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      _exit(1);
    dup2(pfd[1], 1);
    execlp("python3", "python3", LLM_TEST_SERVER, "--port", "0", "--record", ts->record, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  int64_t deadline = mx_mono_ms() + START_DEADLINE_MS;
  ts->port = ts->pid > 0 ? read_port(pfd[0], deadline) : -1;
  close(pfd[0]);
  while (ts->port > 0 && !healthy(ts->port)) {
    if (mx_mono_ms() > deadline) {
      ts->port = -1;
      break;
    }
    struct timespec d = {0, 20 * 1000000L}; /* poll interval, bounded by the deadline */
    nanosleep(&d, NULL);
  }
  if (ts->port <= 0) {
    llm_ts_stop(ts);
    return -1;
  }
  return 0;
}

void llm_ts_stop(struct llm_ts *ts)
{
  if (ts->pid > 0) {
    kill(ts->pid, SIGTERM);
    int64_t deadline = mx_mono_ms() + 5000;
    int st;
    while (waitpid(ts->pid, &st, WNOHANG) == 0) {
      if (mx_mono_ms() > deadline) {
        kill(ts->pid, SIGKILL);
        waitpid(ts->pid, &st, 0);
        break;
      }
      struct timespec d = {0, 10 * 1000000L};
      nanosleep(&d, NULL);
    }
    ts->pid = 0;
  }
  if (ts->record[0])
    unlink(ts->record);
  if (ts->dir[0])
    rmdir(ts->dir);
}

cJSON *llm_ts_requests(const struct llm_ts *ts, const char *scenario, const char *run)
{
  cJSON *arr = cJSON_CreateArray();
  FILE *f = fopen(ts->record, "r");
  char *line = NULL;
  size_t cap = 0;
  while (f && getline(&line, &cap, f) > 0) {
    cJSON *j = cJSON_Parse(line);
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "scenario"));
    const char *r = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "run"));
    if (s && r && strcmp(s, scenario) == 0 && strcmp(r, run) == 0)
      cJSON_AddItemToArray(arr, j);
    else
      cJSON_Delete(j);
  }
  free(line);
  if (f)
    fclose(f);
  return arr;
}

static void add_provider(struct mx_buf *b, const struct llm_ts *ts, const char *spec, int first)
{
  char name[64], kind[32], scen[64], run[64], extra[32] = "";
  if (sscanf(spec, "%63[^:]:%31[^:]:%63[^:]:%63[^:]:%31s", name, kind, scen, run, extra) < 4)
    abort();
  int rc = mx_buf_addf(b,
                       "%s{\"name\":\"%s\",\"kind\":\"%s\",\"model\":\"test-model\","
                       "\"base_url\":\"http://127.0.0.1:%d/s/%s/%s%s\",\"api_key_env\":\"LLM_TEST_KEY\","
                       "\"timeout_ms\":10000,\"stream\":%s,\"price_input_per_1k\":0.5,\"price_output_per_1k\":1.5,"
                       "\"retry\":{\"max_attempts\":3,\"initial_backoff_ms\":1,\"max_backoff_ms\":4},"
                       "\"breaker\":{\"failure_threshold\":3,\"cooldown_ms\":60000}}",
                       first ? "" : ",", name, kind, ts->port, scen, run,
                       strcmp(kind, "openai") == 0 ? "/v1" : "", strcmp(extra, "nostream") == 0 ? "false" : "true");
  if (rc)
    abort();
}

struct llm_config *llm_ts_config(const struct llm_ts *ts, const char *const *providers, size_t n,
                                 const char *agent_json, const char *budgets_json)
{
  setenv("LLM_TEST_KEY", "sk-test-secret-0123456789", 1);
  struct mx_buf b = MX_BUF_INIT(1 << 20);
  if (mx_buf_adds(&b, "{\"providers\":["))
    abort();
  for (size_t i = 0; i < n; i++)
    add_provider(&b, ts, providers[i], i == 0);
  if (mx_buf_adds(&b, "],\"routes\":{\"default\":["))
    abort();
  for (size_t i = 0; i < n; i++) {
    char name[64];
    sscanf(providers[i], "%63[^:]", name);
    if (mx_buf_addf(&b, "%s\"%s\"", i ? "," : "", name))
      abort();
  }
  if (mx_buf_addf(&b, "]},\"agent\":%s", agent_json ? agent_json : "{\"prompts_dir\":\"" MXFLEET_PROMPTS_DIR "\"}"))
    abort();
  if (budgets_json && mx_buf_addf(&b, ",\"budgets\":%s", budgets_json))
    abort();
  if (mx_buf_adds(&b, "}"))
    abort();
  cJSON *j = cJSON_Parse(mx_buf_cstr(&b));
  struct llm_config *cfg = NULL;
  char err[MX_ERRBUF_LEN];
  if (!j || llm_config_parse(j, "test.json", &cfg, err)) {
    fprintf(stderr, "llm_ts_config: %s\n%s\n", j ? err : "bad JSON", mx_buf_cstr(&b));
    abort();
  }
  cJSON_Delete(j);
  mx_buf_release(&b);
  return cfg;
}
