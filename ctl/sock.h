/*
 * juki-ctl — the synchronous socket under the operator's session (terminal.c) and a body's
 * link (link.c): a non-blocking TCP socket driven by poll() against deadlines (monotonic
 * milliseconds, juki_clock_mono_ms()), and a TLS session over it read and written until
 * done or the deadline.
 */
#ifndef JUKI_CTL_SOCK_H
#define JUKI_CTL_SOCK_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* Wait until fd has events (POLLIN, POLLOUT): 0, JUKI_ETIMEDOUT at deadline, or -errno. */
int ctl_sock_wait(int fd, short events, int64_t deadline);

/*
 * Connect to addr ("host:port"), trying each address it resolves to in turn until
 * deadline; *fd is the connected non-blocking socket (TCP_NODELAY, close-on-exec).
 * Returns 0; JUKI_EINVAL when addr is not host:port; JUKI_ENOENT when it does not resolve
 * (why: the resolver's text); else why the last attempt failed, JUKI_ETIMEDOUT at the
 * deadline (why: "timed out" or the error's text).
 */
int ctl_sock_connect(const char *addr, int64_t deadline, int *fd, char *why, size_t whylen);

/*
 * Wait on fd as ssl asks after a call returned r: 1 to call again, 0 at a clean close by
 * the peer, JUKI_ETIMEDOUT at deadline, JUKI_ECLOSED when the peer went away without
 * one, JUKI_ETLS on a TLS error (left on OpenSSL's error queue).
 */
int ctl_sock_ssl_wait(SSL *ssl, int fd, int r, int64_t deadline);

/* Write all of data on ssl by deadline: 0, or a code of ctl_sock_ssl_wait (a close: JUKI_ECLOSED).
 */
int ctl_sock_ssl_write(SSL *ssl, int fd, const void *data, size_t len, int64_t deadline);

/* Read up to len bytes (at least one) from ssl into buf by deadline: 0 with *got, or a code as
 * above. */
int ctl_sock_ssl_read(SSL *ssl, int fd, void *buf, size_t len, size_t *got, int64_t deadline);

#endif
