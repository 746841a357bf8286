/*
 * juki — alerts: the intrusion-detection and fault records of a node
 * (第4-9(1),(3)).  Every refusal at a trust boundary — a denied CONNECT, a
 * failed handshake, an unknown or revoked certificate, a malformed request,
 * a flood — raises one: a warning in the log and a record kept in a bounded
 * ring (the newest `capacity`), with a count per code that never wraps.
 * `juki-ctl alerts` shows them.  Records hold codes, identities and
 * addresses, never personal data.
 */
#ifndef JUKI_ALERT_H
#define JUKI_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "juki/base/clock.h"
#include "juki/wire/tls.h"

struct juki_alerts;

/* juki_alerts_new() - a ring of capacity records; NULL on ENOMEM. */
struct juki_alerts *juki_alerts_new(size_t capacity, const struct juki_clock *clock);
void juki_alerts_free(struct juki_alerts *alerts);

/*
 * juki_alert() - raise an alert.  code is a short token ("policy-denied",
 * "handshake-failed", "unknown-ca", "revoked", "malformed-request", "flood",
 * ...); peer the identity URN if known (NULL otherwise); addr the remote
 * address if known.  Logged as
 *   "alert: <code> peer=<peer> addr=<addr>: <detail>"
 */
void juki_alert(struct juki_alerts *alerts, const char *code, const char *peer, const char *addr,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * juki_alert_quiet() - raise an alert as juki_alert() (recorded, counted)
 * without its log line: for a caller that logs a summary of many instead
 * (the gateway's repeated refusals from one source).
 */
void juki_alert_quiet(struct juki_alerts *alerts, const char *code, const char *peer,
		      const char *addr, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * juki_alert_code_tls() - the alert code of a failed handshake, the same at
 * every boundary: "not-tls", "unknown-certificate" (another CA, or no
 * urn:juki identity), "revoked-certificate", "expired-certificate",
 * "no-certificate", "identity-mismatch" (valid, but not the peer expected),
 * "key-unavailable" (our own key did not sign: its token is gone or locked),
 * "handshake-failed" (anything else).
 */
const char *juki_alert_code_tls(enum juki_tls_failure failure);

/*
 * juki_alert_key_check() - for a daemon whose key is on a PKCS#11 token:
 * make it sign once (juki_tls_key_check()).  The first failure after a
 * success raises "key-unavailable" (peer NULL), a success after failures
 * logs that the key signs again; *down remembers which (start it at 0).
 * Returns a {"on_token", "usable"} object for a status answer (NULL on
 * ENOMEM); a key file is not checked and is always usable.
 */
json_t *juki_alert_key_check(struct juki_alerts *alerts, struct juki_tls *tls, int *down);

/*
 * juki_alerts_on_raise() - call cb(ctx, ...) for every alert raised from now
 * on (one listener; cb NULL removes it), after it is recorded: the monitor
 * forwards them to the watching nodes.  cb runs wherever the alert was
 * raised, maybe inside a store transaction: it must only take note and act
 * later (an event), never write the store or raise an alert itself.
 */
typedef void (*juki_alert_cb)(void *ctx, uint64_t seq, int64_t time_ms, const char *code,
			      const char *peer, const char *addr, const char *detail);
void juki_alerts_on_raise(struct juki_alerts *alerts, juki_alert_cb cb, void *ctx);

/* juki_alerts_count() - alerts raised with code since start (NULL: all). */
uint64_t juki_alerts_count(const struct juki_alerts *alerts, const char *code);

/*
 * juki_alerts_json() - {"total": N, "counts": {code: n...}, "recent": [...]}
 * with at most max recent records, newest last; each record is
 * {"seq", "time", "code", "peer", "addr", "detail"}.  NULL on ENOMEM.
 */
json_t *juki_alerts_json(const struct juki_alerts *alerts, size_t max);

#endif
