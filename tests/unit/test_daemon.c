#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "juki/base/error.h"
#include "juki/node/daemon.h"

#include "helpers.h"

/* Each case gets a temp dir; NOTIFY_SOCKET is unset before and after. */
struct fix {
	char tmp[64];
	char path[128];
	int fd;
};

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	f->fd = -1;
	if (test_mkdtemp(f->tmp, sizeof(f->tmp), "daemon") == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/notify", f->tmp);
	unsetenv("NOTIFY_SOCKET");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	int rc;

	unsetenv("NOTIFY_SOCKET");
	if (f->fd >= 0) {
		close(f->fd);
	}
	rc = test_rm_rf(f->tmp);
	free(f);
	return rc;
}

/* Bind a datagram socket the way systemd does: a path, or "@name" for the abstract namespace. */
static int
bind_notify(const char *name)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_true(strlen(name) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, name, strlen(name));
	if (name[0] == '@') {
		sun.sun_path[0] = '\0';
	}
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

/* The next datagram, already queued: sendto() on a local socket has delivered it. */
static void
expect_datagram(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void
expect_nothing(int fd)
{
	char buf[16];

	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
}

static void
test_unset(void **state)
{
	struct fix *f = *state;

	f->fd = bind_notify(f->path);
	assert_int_equal(juki_sd_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(juki_sd_notify("READY=1"), 0);
	expect_nothing(f->fd);
}

static void
test_path(void **state)
{
	struct fix *f = *state;

	f->fd = bind_notify(f->path);
	setenv("NOTIFY_SOCKET", f->path, 1);
	assert_int_equal(juki_sd_notify("READY=1\nSTATUS=running"), 0);
	assert_int_equal(juki_sd_notify("STOPPING=1"), 0);
	/* One datagram per call, whole, in order. */
	expect_datagram(f->fd, "READY=1\nSTATUS=running");
	expect_datagram(f->fd, "STOPPING=1");
	expect_nothing(f->fd);
}

static void
test_abstract(void **state)
{
	struct fix *f = *state;
	char name[64];

	snprintf(name, sizeof(name), "@juki-test-notify-%ld-%s", (long)getpid(),
		 strrchr(f->tmp, '-') + 1);
	f->fd = bind_notify(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(juki_sd_notify("WATCHDOG=1"), 0);
	expect_datagram(f->fd, "WATCHDOG=1");
	assert_int_equal(juki_sd_notify("RELOADING=1"), 0);
	expect_datagram(f->fd, "RELOADING=1");
}

static void
test_nobody_listening(void **state)
{
	struct fix *f = *state;
	int rc;

	/* No socket at the path: the error comes back, nothing is printed or raised. */
	setenv("NOTIFY_SOCKET", f->path, 1);
	rc = juki_sd_notify("READY=1");
	assert_true(rc == -ENOENT || rc == -ECONNREFUSED);
	setenv("NOTIFY_SOCKET", "@juki-test-nobody-listens-here", 1);
	assert_int_equal(juki_sd_notify("READY=1"), -ECONNREFUSED);
}

static void
test_invalid(void **state)
{
	char longpath[200];

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	assert_int_equal(juki_sd_notify("READY=1"), JUKI_EINVAL);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	assert_int_equal(juki_sd_notify("READY=1"), JUKI_EINVAL);
	longpath[0] = '@';
	setenv("NOTIFY_SOCKET", longpath, 1);
	assert_int_equal(juki_sd_notify("READY=1"), JUKI_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_unset, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_path, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_abstract, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nobody_listening, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
