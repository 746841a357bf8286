/*
 * juki-csd — the import spool: files from the resident record system
 * (住民記録システム) applied to the register (docs/import.md).
 *
 *   <spool>/incoming/   files to import: write elsewhere (or to a name
 *                       starting with '.') and rename in when complete
 *   <spool>/done/       imported files, each with <name>.receipt.json
 *   <spool>/rejected/   refused files, each with <name>.report.json
 *
 * One file at a time, in name order.  A job validates its file a step at a
 * time between other work (progress in "import.status"), then applies it
 * in one transaction with a record of its SHA-256, so a file that was
 * applied is never applied twice even if the daemon stops between the
 * commit and the move to done/.  `juki-ctl import FILE` uploads into the
 * spool over the control socket and follows the job.
 */
#ifndef JUKI_CS_SPOOL_H
#define JUKI_CS_SPOOL_H

#include <jansson.h>

#include "juki/node/control.h"
#include "juki/node/node.h"

struct csd;
struct csd_spool;

/* csd_spool_new() - watch the configured spool (creating its directories, 0700). */
int csd_spool_new(struct csd *cs, struct csd_spool **out, char *err, size_t errlen);
void csd_spool_free(struct csd_spool *spool);

/*
 * csd_spool_check() - refuse a spool whose folder, a folder above it, or
 * its incoming/, done/ or rejected/ is owned by another user than the
 * daemon's or root, or writable by group or others
 * (juki_dir_check_private(), juki/base/dir.h): JUKI_EPERM with the path,
 * the mode and the owner in err.  NULL dir is fine.  At -n, start and every
 * reload.
 */
int csd_spool_check(const char *dir, char *err, size_t errlen);

/*
 * csd_spool_purge() - the spool's retention (import.keep): erase the files
 * of done/ and rejected/ filed (last modified) longer ago than that, as
 * purged records are (juki_node_purge_files()); with dry_run only count
 * them.  Items "import_done" and "import_rejected" of the purge report.
 * The node's purge_files; nothing without a spool.
 */
int csd_spool_purge(struct juki_node *node, int64_t now_ms, int dry_run, json_t *files);

/* Control commands. */
int csd_cmd_import_put(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err);
int csd_cmd_import_status(void *ctx, const json_t *args, json_t **result,
			  struct juki_ctl_error *err);

#endif
