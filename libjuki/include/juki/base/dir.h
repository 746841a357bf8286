/*
 * juki — who may change the folders a daemon keeps its state in: the store,
 * the operation history, the import spool, backups and control sockets.
 *
 * A file in a folder that someone else can write to is theirs to replace:
 * a store swapped, a socket taken over, an import file dropped into the
 * spool and applied as the municipality's own.  So a daemon refuses such a
 * folder at start, at every reload and at -n, like sshd's StrictModes: the
 * folder and every folder above it up to and including / must be owned by
 * the daemon's user (its effective uid) or root, and writable by nobody
 * else (no group or other write bit).  One exception, for the folders
 * above it alone: a folder writable by everyone but sticky and owned by
 * root, like /tmp, where nobody can remove or rename what is not theirs.
 * Symbolic links are resolved first (realpath), and the folders of the
 * resolved path are checked.
 */
#ifndef JUKI_DIR_H
#define JUKI_DIR_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * juki_dir_check_private() - check the folder path and the folders above
 * it as the header says.  A folder that is not there yet is checked from
 * the nearest one above it that is (the one it would be created in), under
 * the rule of the folders above.  Returns 0; JUKI_EPERM with a message
 * naming the path, its mode and its owner in err, e.g.
 *   "/var/spool/juki: mode 0777, writable by others (owner uid 0)"
 *   "/srv/juki: owned by uid 1001, not by the daemon's user (uid 998) or root"
 * JUKI_EINVAL for an empty path; -ENOTDIR for one that is not a folder;
 * -errno when it cannot be examined.
 */
int juki_dir_check_private(const char *path, char *err, size_t errlen);

/* juki_dir_check_parent() - juki_dir_check_private() of the folder that holds file. */
int juki_dir_check_parent(const char *file, char *err, size_t errlen);

/*
 * juki_open_regular() - open the file at path for reading if it is a
 * regular file, checked on the opened file itself (no window between the
 * check and the read).  It is opened with O_NONBLOCK, so that a FIFO put at
 * the path does not hang the caller, and made blocking again once known to
 * be regular.  Returns the descriptor (close-on-exec) with *st filled;
 * JUKI_EINVAL when it is not a regular file (*st filled, nothing left
 * open); -errno.
 */
int juki_open_regular(const char *path, struct stat *st);

#endif
