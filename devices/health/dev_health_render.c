/*
 * devices/health/dev_health_render.c - what the monitor shows: the `!devices`
 * fleet table (plain text and HTML), the `!health` summary lines and the JSON
 * for `mxfleet device list --json`. Reads observations under h->lock; never
 * probes. Online means: checked, fresh handshake by the clock now (WireGuard)
 * and every reachability check healthy.
 * Layer: devices/; common/ only. cJSON returned is owned by the caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_health_int.h"

enum { COL_NAME, COL_STATUS, COL_BACKEND, COL_ADDR, COL_HS, COL_HEALTH, COL_CMD, COL_AUDIT, NCOLS };
static const char *const col_title[NCOLS] = {"DEVICE",    "STATUS", "BACKEND",      "ADDRESS",
                                             "HANDSHAKE", "HEALTH", "LAST COMMAND", "AUDIT"};
#define CELL_LEN 160

mx_err dev_health_html_escape(struct mx_buf *b, const char *s)
{
  mx_err rc = MX_OK;

  for (; *s && !rc; s++) {
    switch (*s) {
    case '&': rc = mx_buf_adds(b, "&amp;"); break;
    case '<': rc = mx_buf_adds(b, "&lt;"); break;
    case '>': rc = mx_buf_adds(b, "&gt;"); break;
    case '"': rc = mx_buf_adds(b, "&quot;"); break;
    case '\'': rc = mx_buf_adds(b, "&#39;"); break;
    default: rc = mx_buf_addc(b, *s); break;
    }
  }
  return rc;
}

static int is_wg(const struct dev_health *h, const struct dev_health_dev *d)
{
  return d->wg_pubkey && h->wg_interface;
}

int dev_health_dev_online(const struct dev_health *h, const struct dev_health_dev *d, int64_t now)
{
  if (d->checked_at == 0)
    return 0;
  if (is_wg(h, d) && dev_health_hs_classify(d->handshake, now, h->stale_after_s) != DEV_HEALTH_HS_OK)
    return 0;
  if (d->agent_health && d->agent_ok != 1)
    return 0;
  if (d->ssh_reach && d->ssh_ok != 1)
    return 0;
  return 1;
}

static const char *status_word(const struct dev_health *h, const struct dev_health_dev *d, int64_t now)
{
  if (d->checked_at == 0)
    return "unchecked";
  if (dev_health_dev_online(h, d, now))
    return "online";
  if (is_wg(h, d) && dev_health_hs_classify(d->handshake, now, h->stale_after_s) != DEV_HEALTH_HS_OK)
    return "stale";
  if (d->agent_health && d->agent_ok == 0)
    return "agent_down";
  if (d->ssh_reach && d->ssh_ok == 0)
    return "ssh_unreachable";
  return "offline";
}

static void health_cell(const struct dev_health_dev *d, char *out, size_t n)
{
  const char *sep = "";
  size_t len = 0;

  out[0] = '\0';
  if (d->agent_health) {
    if (d->checked_at == 0)
      len += (size_t)snprintf(out, n, "agent unchecked");
    else if (d->agent_ok < 0)
      len += (size_t)snprintf(out, n, "agent unreachable (stale link)");
    else if (d->agent_ok)
      len += (size_t)snprintf(out, n, "agent ok");
    else
      len += (size_t)snprintf(out, n, "agent down: %s", d->agent_detail);
    sep = "; ";
  }
  if (d->ssh_reach && len < n) {
    if (d->checked_at == 0 || d->ssh_ok < 0)
      snprintf(out + len, n - len, "%sssh unchecked", sep);
    else if (d->ssh_ok)
      snprintf(out + len, n - len, "%sssh ok", sep);
    else
      snprintf(out + len, n - len, "%sssh unreachable: %.120s", sep, d->ssh_detail);
  }
  if (!out[0])
    snprintf(out, n, "-");
}

static void audit_cell(const struct dev_health_dev *d, char *out, size_t n)
{
  size_t len = 0;
  int bad = 0;

  out[0] = '\0';
  for (size_t i = 0; i < d->nchains && len < n; i++) {
    const struct dev_health_chain *c = d->chains[i];
    if (c->ok == 0) {
      len += (size_t)snprintf(out + len, n - len, "%s%s: %s", bad ? "; " : "", c->name, c->detail);
      bad = 1;
    }
  }
  if (bad)
    return;
  if (d->nchains == 0)
    snprintf(out, n, "-");
  else
    snprintf(out, n, "%s", d->checked_at == 0 ? "unchecked" : "ok");
}

static void row_cells(const struct dev_health *h, const struct dev_health_dev *d, int64_t now,
                      char cells[NCOLS][CELL_LEN])
{
  char age[32];

  snprintf(cells[COL_NAME], CELL_LEN, "%s", d->name);
  snprintf(cells[COL_STATUS], CELL_LEN, "%s", status_word(h, d, now));
  snprintf(cells[COL_BACKEND], CELL_LEN, "%s", d->backend);
  snprintf(cells[COL_ADDR], CELL_LEN, "%s", d->mesh_address ? d->mesh_address : "-");
  if (!is_wg(h, d) || d->checked_at == 0)
    snprintf(cells[COL_HS], CELL_LEN, "-");
  else if (d->handshake < 0)
    snprintf(cells[COL_HS], CELL_LEN, "unknown");
  else
    dev_health_format_age(d->handshake, now, cells[COL_HS], CELL_LEN);
  health_cell(d, cells[COL_HEALTH], CELL_LEN);
  if (d->last_command) {
    dev_health_format_age(d->last_command_at, now, age, sizeof age);
    snprintf(cells[COL_CMD], CELL_LEN, "%.60s (%s)", d->last_command, age);
  } else {
    snprintf(cells[COL_CMD], CELL_LEN, "-");
  }
  audit_cell(d, cells[COL_AUDIT], CELL_LEN);
}

static mx_err text_row(struct mx_buf *b, char cells[NCOLS][CELL_LEN], const size_t *w)
{
  mx_err rc = MX_OK;

  for (int c = 0; c < NCOLS && !rc; c++) {
    if (c == NCOLS - 1)
      rc = mx_buf_addf(b, "%s\n", cells[c]);
    else
      rc = mx_buf_addf(b, "%-*s  ", (int)w[c], cells[c]);
  }
  return rc;
}

static mx_err html_row(struct mx_buf *b, char cells[NCOLS][CELL_LEN], const char *tag)
{
  mx_err rc = mx_buf_adds(b, "<tr>");

  for (int c = 0; c < NCOLS && !rc; c++) {
    rc = mx_buf_addf(b, "<%s>", tag);
    if (!rc)
      rc = dev_health_html_escape(b, cells[c]);
    if (!rc)
      rc = mx_buf_addf(b, "</%s>", tag);
  }
  return rc ? rc : mx_buf_adds(b, "</tr>");
}

static mx_err render_rows(struct dev_health *h, char (*cells)[NCOLS][CELL_LEN], size_t n, struct mx_buf *text,
                          struct mx_buf *html)
{
  size_t w[NCOLS];
  mx_err rc = MX_OK;

  for (int c = 0; c < NCOLS; c++) {
    w[c] = strlen(cells[0][c]);
    for (size_t i = 1; i <= n; i++)
      w[c] = strlen(cells[i][c]) > w[c] ? strlen(cells[i][c]) : w[c];
  }
  for (size_t i = 0; text && !rc && i <= n; i++)
    rc = text_row(text, cells[i], w);
  if (html && !rc)
    rc = mx_buf_adds(html, "<table>");
  for (size_t i = 0; html && !rc && i <= n; i++)
    rc = html_row(html, cells[i], i == 0 ? "th" : "td");
  if (html && !rc)
    rc = mx_buf_adds(html, "</table>");
  (void)h;
  return rc;
}

mx_err dev_health_render_table(struct dev_health *h, struct mx_buf *text, struct mx_buf *html)
{
  char (*cells)[NCOLS][CELL_LEN];
  int64_t now = dev_health_now(h);
  mx_err rc;
  size_t n;

  pthread_mutex_lock(&h->lock);
  n = h->ndevs;
  cells = calloc(n + 1, sizeof *cells);
  if (!cells) {
    pthread_mutex_unlock(&h->lock);
    return MX_ERR_NOMEM;
  }
  for (int c = 0; c < NCOLS; c++)
    snprintf(cells[0][c], CELL_LEN, "%s", col_title[c]);
  for (size_t i = 0; i < n; i++)
    row_cells(h, h->devs[i], now, cells[i + 1]);
  pthread_mutex_unlock(&h->lock);
  rc = render_rows(h, cells, n, text, html);
  free(cells);
  return rc;
}

mx_err dev_health_summary_line(const struct dev_health *h, const struct dev_health_dev *d, int64_t now,
                               struct mx_buf *out)
{
  char cells[NCOLS][CELL_LEN];

  row_cells(h, d, now, cells);
  return mx_buf_addf(out, "%s: %s; handshake %s; %s; audit %s", d->name, cells[COL_STATUS], cells[COL_HS],
                     cells[COL_HEALTH], cells[COL_AUDIT]);
}
