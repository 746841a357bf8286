#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "juki/base/error.h"

static const char *const own[] = {
    [-(JUKI_ECONFIG - JUKI_EBASE)] = "invalid configuration",
    [-(JUKI_ETLS - JUKI_EBASE)] = "TLS failure",
    [-(JUKI_ECERT - JUKI_EBASE)] = "certificate missing or invalid",
    [-(JUKI_EKEYPERM - JUKI_EBASE)] = "private key file is readable by group or others",
    [-(JUKI_ESTORE - JUKI_EBASE)] = "database failure",
    [-(JUKI_ESCHEMA - JUKI_EBASE)] = "database schema is newer than this program",
    [-(JUKI_EJSON - JUKI_EBASE)] = "invalid JSON",
    [-(JUKI_EFRAME - JUKI_EBASE)] = "malformed frame",
    [-(JUKI_ETOOBIG - JUKI_EBASE)] = "over the size limit",
    [-(JUKI_EPOLICY - JUKI_EBASE)] = "denied by flow policy",
    [-(JUKI_ECHECKDIGIT - JUKI_EBASE)] = "check digit does not match",
    [-(JUKI_EFORMAT - JUKI_EBASE)] = "malformed field",
    [-(JUKI_EIDENT - JUKI_EBASE)] = "malformed identity",
    [-(JUKI_ENOTFOUND - JUKI_EBASE)] = "not found",
    [-(JUKI_EDUP - JUKI_EBASE)] = "already recorded",
    [-(JUKI_EPROTO - JUKI_EBASE)] = "protocol violation",
    [-(JUKI_ECLOSED - JUKI_EBASE)] = "connection closed",
    [-(JUKI_EAUTH - JUKI_EBASE)] = "wrong PIN or passphrase",
    [-(JUKI_ELOCKED - JUKI_EBASE)] = "operator locked",
};

const char *
juki_strerror(int code)
{
	if (code == 0) {
		return "success";
	}
	if (code <= JUKI_EBASE && code > JUKI_ELAST) {
		return own[-(code - JUKI_EBASE)];
	}
	if (code < 0 && code > JUKI_EBASE) {
		return strerror(-code);
	}
	return "unknown error";
}

void
juki_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
