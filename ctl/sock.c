/*
 * The synchronous socket of juki-ctl's connections (sock.h): the operator's session to a
 * daemon (terminal.c) and a body's link through the gateway (link.c).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "juki/base/clock.h"
#include "juki/base/config.h"
#include "juki/base/error.h"
#include "sock.h"

#define HOST_MAX 256

int
ctl_sock_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};

	for (;;) {
		int64_t left = deadline - juki_clock_mono_ms();
		int n;

		if (left <= 0) {
			return JUKI_ETIMEDOUT;
		}
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		if (n > 0) {
			return 0;
		}
	}
}

int
ctl_sock_connect(const char *addr, int64_t deadline, int *out, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char host[HOST_MAX], port_text[8];
	int port, gai, rc = JUKI_ECLOSED;

	*out = -1;
	if (juki_conf_split_addr(addr, host, sizeof(host), &port) != 0) {
		juki_seterr(why, whylen, "not host:port");
		return JUKI_EINVAL;
	}
	snprintf(port_text, sizeof(port_text), "%d", port);
	gai = getaddrinfo(host, port_text, &hints, &res);
	if (gai != 0) {
		juki_seterr(why, whylen, "%s", gai_strerror(gai));
		return JUKI_ENOENT;
	}
	for (struct addrinfo *ai = res; ai != NULL && *out < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);

		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			rc = 0;
		} else if (errno != EINPROGRESS) {
			rc = -errno;
		} else if ((rc = ctl_sock_wait(fd, POLLOUT, deadline)) == 0) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);

			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
				soerr = errno;
			}
			rc = -soerr;
		}
		if (rc == 0) {
			int one = 1;

			/*
			 * A message, then its answer: Nagle's algorithm against the peer's
			 * delayed ACK would hold the last segment of every message for
			 * 40 ms (as the daemons' sockets, net.c).
			 */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			*out = fd;
		} else {
			close(fd);
		}
		if (rc == JUKI_ETIMEDOUT) {
			break;
		}
	}
	freeaddrinfo(res);
	if (*out < 0) {
		juki_seterr(why, whylen, "%s",
			    rc == JUKI_ETIMEDOUT ? "timed out" : juki_strerror(rc));
		return rc;
	}
	return 0;
}

int
ctl_sock_ssl_wait(SSL *ssl, int fd, int r, int64_t deadline)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return ctl_sock_wait(fd, POLLIN, deadline) == 0 ? 1 : JUKI_ETIMEDOUT;
	case SSL_ERROR_WANT_WRITE:
		return ctl_sock_wait(fd, POLLOUT, deadline) == 0 ? 1 : JUKI_ETIMEDOUT;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		return ERR_peek_error() != 0 ? JUKI_ETLS : JUKI_ECLOSED;
	default:
		return JUKI_ETLS;
	}
}

int
ctl_sock_ssl_write(SSL *ssl, int fd, const void *data, size_t len, int64_t deadline)
{
	const unsigned char *p = data;

	while (len > 0) {
		size_t n = 0;
		int r, rc;

		ERR_clear_error();
		r = SSL_write_ex(ssl, p, len, &n);
		if (r == 1) {
			p += n;
			len -= n;
			continue;
		}
		rc = ctl_sock_ssl_wait(ssl, fd, r, deadline);
		if (rc != 1) {
			return rc == 0 ? JUKI_ECLOSED : rc;
		}
	}
	return 0;
}

int
ctl_sock_ssl_read(SSL *ssl, int fd, void *buf, size_t len, size_t *got, int64_t deadline)
{
	for (;;) {
		int r, rc;

		ERR_clear_error();
		r = SSL_read_ex(ssl, buf, len, got);
		if (r == 1) {
			return 0;
		}
		rc = ctl_sock_ssl_wait(ssl, fd, r, deadline);
		if (rc != 1) {
			return rc == 0 ? JUKI_ECLOSED : rc;
		}
	}
}
