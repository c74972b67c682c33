/*
 * bench/tools/bench_tools_audit.c - audit chain throughput on a real SQLite
 * file in a temporary directory: appends per second in batched
 * transactions (target >= 20,000/s), single-record transactions for
 * reference, and records verified per second (target >= 1,000,000/s).
 * Usage: bench_tools_audit [records (default 200000)] [batch (default 1000)]
 * Prints figures; not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_util.h"
#include "tools_audit.h"

static void fill(struct tools_audit_entry *e, const cJSON *args, int i)
{
  memset(e, 0, sizeof(*e));
  e->kind = i % 2 ? "result" : "intent";
  e->intent_seq = 0;
  e->call_id = "call-0123456789";
  e->operator_mxid = "@operator:example.org";
  e->operator_device = "ABCDEFGHIJ";
  e->verification = "verified";
  e->room_id = "!abcdefghijklmnop:example.org";
  e->event_id = "$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
  e->tool = "fs.read";
  e->args = args;
  e->decision = "allow";
  e->status = i % 2 ? "done" : "pending";
  e->exit_code = i % 2 ? 0 : -1;
  e->output_sha256 = i % 2 ? "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" : NULL;
  e->duration_ms = 12;
}

int main(int argc, char **argv)
{
  int total = argc > 1 ? atoi(argv[1]) : 200000;
  int batch = argc > 2 ? atoi(argv[2]) : 1000;
  char dir[] = "/tmp/mxbench-audit-XXXXXX", err[MX_ERRBUF_LEN], cmd[128];
  if (total <= 0 || batch <= 0 || !mkdtemp(dir))
    return 2;
  struct tools_audit *a = NULL;
  struct tools_audit_opts o = {dir, "bench", NULL};
  if (tools_audit_open(&o, &a, err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  cJSON *args = cJSON_Parse("{\"path\":\"/var/log/nginx/access.log\",\"max_bytes\":65536}");
  struct tools_audit_entry *e = calloc((size_t)batch, sizeof(*e));
  for (int i = 0; i < batch; i++)
    fill(&e[i], args, i);
  int rc = 0;
  int64_t t0 = mx_mono_ms();
  for (int done = 0; done < total && !rc; done += batch)
    rc = tools_audit_append_batch(a, e, (size_t)(total - done < batch ? total - done : batch), NULL, err);
  int64_t t1 = mx_mono_ms();
  int single = 2000;
  for (int i = 0; i < single && !rc; i++)
    rc = tools_audit_append(a, &e[i % batch], NULL, err);
  int64_t single_ms = mx_mono_ms() - t1;
  /* Verify a chain at rest, as `mxfleet audit verify` does: reopen (which
   * checkpoints the WAL), then take the best of three runs (the machine
   * may be shared). */
  tools_audit_close(a);
  a = NULL;
  if (!rc)
    rc = tools_audit_open(&o, &a, err);
  struct tools_audit_verify_report rep;
  int64_t best = -1;
  for (int i = 0; i < 3 && !rc; i++) {
    int64_t s = mx_mono_ms();
    rc = tools_audit_verify(a, NULL, &rep, err);
    int64_t d = mx_mono_ms() - s;
    if (best < 0 || d < best)
      best = d;
  }
  int64_t verify_ms = best > 0 ? best : 1;
  if (rc) {
    fprintf(stderr, "error: %s\n", err);
  } else {
    double ab = (double)total / ((double)(t1 - t0 > 0 ? t1 - t0 : 1) / 1000.0);
    double as = (double)single / ((double)(single_ms > 0 ? single_ms : 1) / 1000.0);
    double vr = (double)rep.rows / ((double)verify_ms / 1000.0);
    printf("audit appends (batches of %d): %d records in %lld ms = %.0f appends/s (target >= 20000)\n", batch, total,
           (long long)(t1 - t0), ab);
    printf("audit appends (one transaction each, WAL, synchronous=FULL): %d in %lld ms = %.0f appends/s\n", single,
           (long long)single_ms, as);
    printf("audit verify (best of 3): %lld records in %lld ms = %.0f records/s (target >= 1000000) [%s]\n",
           (long long)rep.rows, (long long)verify_ms, vr, rep.ok ? "ok" : rep.message);
  }
  free(e);
  cJSON_Delete(args);
  tools_audit_close(a);
  if (getenv("BENCH_KEEP")) {
    printf("kept %s\n", dir);
    goto out;
  }
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  if (system(cmd) != 0)
    rc = 1;
out:
  return rc ? 1 : 0;
}
