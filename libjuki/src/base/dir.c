#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "juki/base/dir.h"
#include "juki/base/error.h"

/* One folder: the named one (leaf) or one above it. */
static int
check_one(const char *path, int leaf, char *err, size_t errlen)
{
	struct stat st;
	uid_t me = geteuid();

	if (lstat(path, &st) != 0) {
		int rc = -errno;

		juki_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		juki_seterr(err, errlen, "%s: not a folder", path);
		return -ENOTDIR;
	}
	if (st.st_uid != me && st.st_uid != 0) {
		juki_seterr(err, errlen,
			    "%s: owned by uid %u, not by the daemon's user (uid %u) or root", path,
			    (unsigned)st.st_uid, (unsigned)me);
		return JUKI_EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
		return 0;
	}
	/* Above the folder, /tmp's kind: nobody removes or renames what is not theirs. */
	if (!leaf && (st.st_mode & S_ISVTX) != 0 && st.st_uid == 0) {
		return 0;
	}
	juki_seterr(err, errlen, "%s: mode %04o, writable by %s (owner uid %u)", path,
		    (unsigned)(st.st_mode & 07777),
		    (st.st_mode & S_IWOTH) != 0 ? "others" : "group", (unsigned)st.st_uid);
	return JUKI_EPERM;
}

/* Cut the last component of an absolute path in place ("/a/b" -> "/a", "/a" -> "/"). */
static void
cut_last(char *path)
{
	char *slash = strrchr(path, '/');

	if (slash == path) {
		path[1] = '\0';
	} else if (slash != NULL) {
		*slash = '\0';
	}
}

int
juki_dir_check_private(const char *path, char *err, size_t errlen)
{
	char abs[PATH_MAX], real[PATH_MAX];
	struct stat st;
	int leaf = 1, rc;
	size_t n;

	if (path == NULL || path[0] == '\0') {
		juki_seterr(err, errlen, "an empty folder path");
		return JUKI_EINVAL;
	}
	if (path[0] == '/') {
		n = (size_t)snprintf(abs, sizeof(abs), "%s", path);
	} else {
		char cwd[PATH_MAX];

		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			rc = -errno;
			juki_seterr(err, errlen, "%s: the current folder: %s", path,
				    strerror(errno));
			return rc;
		}
		n = (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
	}
	if (n >= sizeof(abs)) {
		juki_seterr(err, errlen, "%s: path too long", path);
		return JUKI_ENAMETOOLONG;
	}
	while ((n = strlen(abs)) > 1 && abs[n - 1] == '/') {
		abs[n - 1] = '\0';
	}
	/* Not there yet: it will be made in the nearest folder above that is. */
	while (lstat(abs, &st) != 0) {
		if (errno != ENOENT || strcmp(abs, "/") == 0) {
			rc = -errno;
			juki_seterr(err, errlen, "%s: %s", abs, strerror(errno));
			return rc;
		}
		cut_last(abs);
		leaf = 0;
	}
	if (realpath(abs, real) == NULL) {
		rc = -errno;
		juki_seterr(err, errlen, "%s: %s", abs, strerror(errno));
		return rc;
	}
	for (;;) {
		if ((rc = check_one(real, leaf, err, errlen)) != 0) {
			return rc;
		}
		if (strcmp(real, "/") == 0) {
			return 0;
		}
		cut_last(real);
		leaf = 0;
	}
}

int
juki_dir_check_parent(const char *file, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	char *slash;

	if (file == NULL || file[0] == '\0') {
		juki_seterr(err, errlen, "an empty file path");
		return JUKI_EINVAL;
	}
	if (strlen(file) >= sizeof(dir)) {
		juki_seterr(err, errlen, "%s: path too long", file);
		return JUKI_ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		return juki_dir_check_private(".", err, errlen);
	}
	if (slash == dir) {
		slash[1] = '\0';
	} else {
		*slash = '\0';
	}
	return juki_dir_check_private(dir, err, errlen);
}

int
juki_open_regular(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC), rc;

	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, st) != 0) {
		rc = -errno;
	} else if (!S_ISREG(st->st_mode)) {
		rc = JUKI_EINVAL;
	} else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		rc = -errno;
	} else {
		return fd;
	}
	close(fd);
	return rc;
}
