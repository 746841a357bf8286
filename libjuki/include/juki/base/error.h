/*
 * juki — error codes.
 *
 * Every libjuki function that can fail returns int: 0 on success, a negative
 * code on failure.  Codes in the errno range are -errno; codes of our own
 * start at JUKI_EBASE.  Library code never prints or exits; the caller logs
 * juki_strerror(rc).
 */
#ifndef JUKI_ERROR_H
#define JUKI_ERROR_H

#include <errno.h>
#include <stddef.h>

enum {
	JUKI_EOK = 0,
	JUKI_ENOMEM = -ENOMEM,
	JUKI_EINVAL = -EINVAL,
	JUKI_ENOENT = -ENOENT,
	JUKI_EEXIST = -EEXIST,
	JUKI_EIO = -EIO,
	JUKI_EAGAIN = -EAGAIN,
	JUKI_ERANGE = -ERANGE,
	JUKI_EACCES = -EACCES,
	JUKI_EPERM = -EPERM,
	JUKI_ETIMEDOUT = -ETIMEDOUT,
	JUKI_ENAMETOOLONG = -ENAMETOOLONG,

	JUKI_EBASE = -1000,
	JUKI_ECONFIG = -1000,     /* configuration is invalid */
	JUKI_ETLS = -1001,        /* TLS library failure */
	JUKI_ECERT = -1002,       /* certificate missing, invalid or without identity */
	JUKI_EKEYPERM = -1003,    /* private key file readable by group or others */
	JUKI_ESTORE = -1004,      /* SQLite failure */
	JUKI_ESCHEMA = -1005,     /* database schema newer than this program */
	JUKI_EJSON = -1006,       /* invalid JSON */
	JUKI_EFRAME = -1007,      /* malformed frame */
	JUKI_ETOOBIG = -1008,     /* frame or line over its limit */
	JUKI_EPOLICY = -1009,     /* flow denied by policy */
	JUKI_ECHECKDIGIT = -1010, /* check digit does not match */
	JUKI_EFORMAT = -1011,     /* field has the wrong form */
	JUKI_EIDENT = -1012,      /* malformed urn:juki identity */
	JUKI_ENOTFOUND = -1013,   /* no such record */
	JUKI_EDUP = -1014,        /* already recorded */
	JUKI_EPROTO = -1015,      /* peer broke the protocol */
	JUKI_ECLOSED = -1016,     /* connection closed */
	JUKI_EAUTH = -1017,       /* wrong PIN or passphrase */
	JUKI_ELOCKED = -1018,     /* operator locked */
	JUKI_ELAST = -1019,
};

/*
 * juki_strerror() - describe an error code.
 * Returns a static string; never NULL.
 */
const char *juki_strerror(int code);

/*
 * juki_seterr() - format a message into err (errlen bytes, truncated and
 * always terminated), for functions that explain a failure beside its code.
 * Does nothing when err is NULL or errlen is 0.
 */
void juki_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
