/*
 * llm/stt/llm_stt_audio.c - what is in a voice message before any program
 * sees it: the size limit, the format (Ogg/Opus as Element sends it, or
 * WAV), structural checks (every Ogg page complete, an OpusHead first) and
 * the duration (last granule position minus pre-skip at 48 kHz; WAV data
 * bytes over the byte rate), so over-long or garbage audio is refused early.
 * Layer: llm/; common/ only. Pure: no I/O.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "llm_stt.h"

static uint32_t le32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
  return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t le64(const unsigned char *p)
{
  return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static const char *mime(const char *m)
{
  return m && m[0] ? m : "no type";
}

static mx_err not_audio(const unsigned char *a, size_t n, const char *mimetype, char *err)
{
  char hex[3 * 8 + 1] = "";
  size_t len = 0;

  for (size_t i = 0; i < n && i < 8; i++)
    len += (size_t)snprintf(hex + len, sizeof hex - len, "%s%02x", i ? " " : "", a[i]);
  return mx_fail(MX_ERR_INVALID, err, "voice message (%s, %zu bytes): expected Ogg/Opus or WAV audio, got data "
                 "starting with '%s'", mime(mimetype), n, hex);
}

/* Walks every page; fills duration from the last granule of the stream. */
static mx_err probe_ogg(const unsigned char *a, size_t n, const char *mimetype, struct llm_stt_audio_info *info,
                        char *err)
{
  size_t off = 0;
  uint32_t serial = 0;
  uint16_t preskip = 0;
  uint64_t last = 0;

  while (off < n) {
    size_t hdr, body = 0;
    if (n - off < 27 || memcmp(a + off, "OggS", 4) != 0 || a[off + 4] != 0)
      return mx_fail(MX_ERR_INVALID, err, "voice message (%s): broken Ogg page at byte %zu", mime(mimetype), off);
    hdr = 27 + (size_t)a[off + 26];
    if (n - off < hdr)
      return mx_fail(MX_ERR_INVALID, err, "voice message (%s): truncated Ogg page at byte %zu", mime(mimetype), off);
    for (size_t i = 27; i < hdr; i++)
      body += a[off + i];
    if (n - off - hdr < body)
      return mx_fail(MX_ERR_INVALID, err, "voice message (%s): truncated Ogg page at byte %zu", mime(mimetype), off);
    if (off == 0) {
      const unsigned char *h = a + hdr;
      if (body >= 7 && memcmp(h, "\x01vorbis", 7) == 0)
        return mx_fail(MX_ERR_INVALID, err, "voice message (%s): expected Ogg/Opus audio, got Ogg/Vorbis",
                       mime(mimetype));
      if (body < 19 || memcmp(h, "OpusHead", 8) != 0)
        return mx_fail(MX_ERR_INVALID, err, "voice message (%s): expected an OpusHead in the first Ogg page",
                       mime(mimetype));
      info->channels = h[9];
      preskip = le16(h + 10);
      info->sample_rate = (int)le32(h + 12);
      serial = le32(a + 14);
    }
    /* Granule -1 marks a page where no packet ends; it carries no time. */
    if (le32(a + off + 14) == serial && le64(a + off + 6) != UINT64_MAX)
      last = le64(a + off + 6);
    off += hdr + body;
  }
  if (last <= preskip)
    return mx_fail(MX_ERR_INVALID, err, "voice message (%s): the Ogg/Opus stream has no audio", mime(mimetype));
  info->format = "ogg/opus";
  info->duration_s = (double)(last - preskip) / 48000.0;
  return MX_OK;
}

static mx_err probe_wav(const unsigned char *a, size_t n, const char *mimetype, struct llm_stt_audio_info *info,
                        char *err)
{
  size_t off = 12;
  uint32_t byte_rate = 0;

  while (n - off >= 8) {
    uint32_t id_len = le32(a + off + 4);
    size_t avail = n - off - 8;
    size_t len = id_len < avail ? id_len : avail; /* streaming writers leave sizes at 0xffffffff */
    if (memcmp(a + off, "fmt ", 4) == 0 && len >= 16) {
      info->channels = le16(a + off + 10);
      info->sample_rate = (int)le32(a + off + 12);
      byte_rate = le32(a + off + 16);
    } else if (memcmp(a + off, "data", 4) == 0) {
      if (byte_rate == 0 || info->channels == 0)
        break;
      info->format = "wav";
      info->duration_s = (double)len / byte_rate;
      return MX_OK;
    }
    off += 8 + len + (len & 1);
    if (off > n)
      break;
  }
  return mx_fail(MX_ERR_INVALID, err, "voice message (%s): expected a WAV file with fmt and data chunks",
                 mime(mimetype));
}

mx_err llm_stt_probe(const struct llm_stt_config *cfg, const void *audio, size_t n, const char *mimetype,
                     struct llm_stt_audio_info *info, char *err)
{
  const unsigned char *a = audio;
  mx_err rc;

  memset(info, 0, sizeof *info);
  if (n > cfg->max_bytes)
    return mx_fail(MX_ERR_TOO_BIG, err, "voice message is %zu bytes; the limit is %zu bytes", n, cfg->max_bytes);
  if (n >= 4 && memcmp(a, "OggS", 4) == 0)
    rc = probe_ogg(a, n, mimetype, info, err);
  else if (n >= 12 && memcmp(a, "RIFF", 4) == 0 && memcmp(a + 8, "WAVE", 4) == 0)
    rc = probe_wav(a, n, mimetype, info, err);
  else
    rc = not_audio(a, n, mimetype, err);
  if (rc)
    return rc;
  if (info->duration_s > cfg->max_duration_s)
    return mx_fail(MX_ERR_TOO_BIG, err, "voice message is %.0f s long; the limit is %d s", ceil(info->duration_s),
                   cfg->max_duration_s);
  return MX_OK;
}
