/*
 * mx_share.h - where the read-only files that ship with mxfleet live:
 * manifest templates, prompts, systemd units, examples. Installed they are
 * under PREFIX/share/mxfleet (found next to the running binary, so an
 * install moved to another prefix still works); in a build tree they are
 * read from the source checkout. Lowest layer: no config, no logging.
 */
#ifndef MX_SHARE_H
#define MX_SHARE_H

/* What ships, by its name under share/mxfleet. */
enum mx_share_dir {
  MX_SHARE_TEMPLATES, /* share/mxfleet/templates   (source: tools/templates) */
  MX_SHARE_PROMPTS,   /* share/mxfleet/prompts     (source: prompts) */
  MX_SHARE_SYSTEMD,   /* share/mxfleet/systemd     (source: packaging/systemd) */
  MX_SHARE_EXAMPLES   /* share/mxfleet/examples    (source: examples) */
};

/* The directory holding `what`, malloc'd (free it), or NULL on OOM. Tried in
 * order, first existing wins: $MXFLEET_DATADIR/<name>; <dir of the running
 * binary>/../share/mxfleet/<name>; the source tree this binary was built
 * from; the configured install prefix's share/mxfleet/<name>. When none
 * exists the install path is returned, so errors name where the file was
 * expected. */
char *mx_share_dir(enum mx_share_dir what);

#endif
