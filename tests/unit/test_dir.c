#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "juki/base/dir.h"
#include "juki/base/error.h"

#include "helpers.h"

struct fx {
	char dir[64];
	char path[256];
	char err[512];
};

static int
setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	if (test_mkdtemp(f.dir, sizeof(f.dir), "dir") == NULL) {
		return -1;
	}
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	test_rm_rf(f->dir);
	return 0;
}

/* dir/name made with mode (umask aside), its path in f->path. */
static const char *
make(struct fx *f, const char *name, mode_t mode)
{
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_int_equal(chmod(f->path, mode), 0);
	return f->path;
}

static void
test_private_folder_passes(void **state)
{
	struct fx *f = *state;
	char sub[300];

	/* mkdtemp's 0700 under /tmp (root's, sticky): the test directories of every test */
	assert_int_equal(juki_dir_check_private(f->dir, f->err, sizeof(f->err)), 0);
	/* not there yet: checked from the folder it would be made in */
	snprintf(sub, sizeof(sub), "%s/not/yet", f->dir);
	assert_int_equal(juki_dir_check_private(sub, f->err, sizeof(f->err)), 0);
	snprintf(sub, sizeof(sub), "%s/node.db", f->dir);
	assert_int_equal(juki_dir_check_parent(sub, f->err, sizeof(f->err)), 0);
	/* 0755: others read, nobody else writes */
	assert_int_equal(juki_dir_check_private(make(f, "open", 0755), f->err, sizeof(f->err)), 0);
}

static void
test_writable_by_others_refused(void **state)
{
	struct fx *f = *state;
	char want[512];

	make(f, "spool", 0777);
	snprintf(want, sizeof(want), "%s: mode 0777, writable by others (owner uid %u)", f->path,
		 (unsigned)geteuid());
	assert_int_equal(juki_dir_check_private(f->path, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_string_equal(f->err, want);
	/* a trailing slash names the same folder */
	strcat(f->path, "/");
	assert_int_equal(juki_dir_check_private(f->path, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_string_equal(f->err, want);
}

static void
test_writable_by_group_refused(void **state)
{
	struct fx *f = *state;
	char want[512];

	make(f, "store", 0770);
	snprintf(want, sizeof(want), "%s: mode 0770, writable by group (owner uid %u)", f->path,
		 (unsigned)geteuid());
	assert_int_equal(juki_dir_check_private(f->path, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_string_equal(f->err, want);
}

static void
test_sticky_folder_is_no_leaf(void **state)
{
	struct fx *f = *state;

	/* /tmp's kind is fine above a folder, never as the folder itself */
	make(f, "tmp", 01777);
	assert_int_equal(juki_dir_check_private(f->path, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_non_null(strstr(f->err, "/tmp: mode 1777, writable by others"));
}

static void
test_folder_above_checked(void **state)
{
	struct fx *f = *state;
	char parent[256], child[300], want[512];

	snprintf(parent, sizeof(parent), "%s", make(f, "shared", 0777));
	snprintf(child, sizeof(child), "%s/spool", parent);
	assert_int_equal(mkdir(child, 0700), 0);
	snprintf(want, sizeof(want), "%s: mode 0777, writable by others (owner uid %u)", parent,
		 (unsigned)geteuid());
	assert_int_equal(juki_dir_check_private(child, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_string_equal(f->err, want);
	/* the folder of a file, and a folder not there yet under it */
	snprintf(child, sizeof(child), "%s/spool/node.db", parent);
	assert_int_equal(juki_dir_check_parent(child, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_string_equal(f->err, want);
	snprintf(child, sizeof(child), "%s/new", parent);
	assert_int_equal(juki_dir_check_private(child, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_string_equal(f->err, want);
}

static void
test_sticky_root_folder_above_passes(void **state)
{
	struct fx *f = *state;
	char child[300];

	make(f, "tmp", 01777);
	snprintf(child, sizeof(child), "%s/spool", f->path);
	assert_int_equal(mkdir(child, 0700), 0);
	if (geteuid() == 0) {
		assert_int_equal(juki_dir_check_private(child, f->err, sizeof(f->err)), 0);
	} else {
		/* sticky, but not root's: its owner may still swap what is in it */
		assert_int_equal(juki_dir_check_private(child, f->err, sizeof(f->err)), JUKI_EPERM);
	}
}

static void
test_symlink_resolved(void **state)
{
	struct fx *f = *state;
	char target[256], link[300], want[512];

	snprintf(target, sizeof(target), "%s", make(f, "open", 0777));
	snprintf(link, sizeof(link), "%s/spool", f->dir);
	assert_int_equal(symlink(target, link), 0);
	snprintf(want, sizeof(want), "%s: mode 0777, writable by others (owner uid %u)", target,
		 (unsigned)geteuid());
	assert_int_equal(juki_dir_check_private(link, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_string_equal(f->err, want);
}

static void
test_other_owner_refused(void **state)
{
	struct fx *f = *state;
	char want[512];

	if (geteuid() != 0) {
		skip(); /* chown needs root */
	}
	make(f, "theirs", 0700);
	assert_int_equal(chown(f->path, 4242, 4242), 0);
	snprintf(want, sizeof(want),
		 "%s: owned by uid 4242, not by the daemon's user (uid 0) or root", f->path);
	assert_int_equal(juki_dir_check_private(f->path, f->err, sizeof(f->err)), JUKI_EPERM);
	assert_string_equal(f->err, want);
}

static void
test_not_a_folder(void **state)
{
	struct fx *f = *state;
	FILE *file;

	snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
	file = fopen(f->path, "w");
	assert_non_null(file);
	fclose(file);
	assert_int_equal(juki_dir_check_private(f->path, f->err, sizeof(f->err)), -ENOTDIR);
	assert_non_null(strstr(f->err, "not a folder"));
	assert_int_equal(juki_dir_check_private("", f->err, sizeof(f->err)), JUKI_EINVAL);
	assert_int_equal(juki_dir_check_parent(NULL, f->err, sizeof(f->err)), JUKI_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_private_folder_passes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_writable_by_others_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_writable_by_group_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sticky_folder_is_no_leaf, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_folder_above_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sticky_root_folder_above_passes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_symlink_resolved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_owner_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_folder, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
