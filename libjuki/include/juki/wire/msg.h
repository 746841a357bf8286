/*
 * juki — messages (docs/design.md §4; the wire format is in docs/protocol.md).
 *
 * Every frame on an inner channel is one message:
 *
 *   {"v":1, "id":"<UUIDv7>", "type":"tennyu.notice",
 *    "from":"urn:juki:cs:271004", "to":"urn:juki:cs:131016",
 *    "time":"2026-11-25T01:02:03.456Z", "corr":null, "body":{...}}
 *
 * The receiver answers each with an ack: type "ack", corr = the id acked,
 * body {"status":"accepted"|"duplicate"|"rejected", "reason":"<code>",
 * "detail":"<text>"} (reason and detail only when rejected).
 */
#ifndef JUKI_MSG_H
#define JUKI_MSG_H

#include <stdint.h>

#include <jansson.h>

#include "juki/base/clock.h"
#include "juki/base/ident.h"

#define JUKI_PROTO_VERSION 1
#define JUKI_UUID_LEN      36
#define JUKI_TYPE_MAX      48
#define JUKI_REASON_MAX    48
#define JUKI_DETAIL_MAX    256

/* Message types: the move-in flow and identity information (docs/protocol.md §10). */
#define JUKI_MSG_ACK          "ack"
#define JUKI_MSG_TENNYU       "tennyu.notice"     /* 転入通知, cs -> cs over muni */
#define JUKI_MSG_TENSHUTSU    "tenshutsu.confirm" /* 転出確定通知, cs -> pref over honnin */
#define JUKI_MSG_HONNIN_BATCH "honnin.batch" /* 本人確認情報, cs -> pref -> jlis over honnin */
#define JUKI_MSG_COUNT_QUERY  "honnin.count.query" /* 更新件数リスト request; the ack answers */
#define JUKI_MSG_COPY_REQUEST "copy.request" /* 住民票の写しの広域交付, cs -> cs over muni */
#define JUKI_MSG_COPY_ANSWER  "copy.answer" /* its answer, cs -> cs over muni */
/* 転入転出の特例 (第6-5), cs -> cs over muni (docs/protocol.md §18) */
#define JUKI_MSG_TOKUREI_REQUEST   "tokurei.request" /* 転入地 -> 転出地: 最初の転入届 */
#define JUKI_MSG_TOKUREI_ANSWER    "tokurei.answer" /* 転出地 -> 転入地: 転出証明書情報 */
#define JUKI_MSG_TOKUREI_COLLECTED "tokurei.collected" /* 転入地 -> 転出地: card collected */

/* Provision of identity information (第6-8), over provide (docs/protocol.md, provision). */
#define JUKI_MSG_PROVIDE_QUERY  "provide.query"  /* body -> pref/jlis: one person */
#define JUKI_MSG_PROVIDE_BATCH  "provide.batch"  /* body -> pref/jlis: a part of a batch */
#define JUKI_MSG_PROVIDE_NOTICE "provide.notice" /* jlis -> pref: provision records */
/* jlis -> pref: the notices' count and digest of a day; the ack answers */
#define JUKI_MSG_PROVIDE_COUNT "provide.count.query"

/* Notices (第4-7(3)), over monitor (docs/protocol.md, the service monitor; node/notice.h). */
#define JUKI_MSG_NOTICE     "monitor.notice"     /* watcher -> watched node */
#define JUKI_MSG_NOTICE_ACK "monitor.notice.ack" /* watched node -> the notice's sender */

/* Reason codes carried by rejected acks (docs/protocol.md lists them all). */
#define JUKI_R_BAD_JSON       "bad-json"            /* frame is not a JSON object */
#define JUKI_R_BAD_VERSION    "unsupported-version" /* "v" is not one we speak */
#define JUKI_R_BAD_HEADER     "bad-header"          /* a header field missing or malformed */
#define JUKI_R_UNKNOWN_TYPE   "unknown-type"        /* no handler for "type" here */
#define JUKI_R_SENDER         "sender-mismatch"     /* "from" is not the TLS peer */
#define JUKI_R_RECIPIENT      "recipient-mismatch"  /* "to" is not this node */
#define JUKI_R_POLICY         "policy-denied"       /* type not allowed on this service */
#define JUKI_R_BAD_FIELD      "invalid-field"       /* a body field malformed; detail names it */
#define JUKI_R_CHECK_DIGIT    "check-digit"         /* a code's check digit is wrong */
#define JUKI_R_FUTURE_DATE    "future-date"         /* a date after today (JST) */
#define JUKI_R_UNKNOWN_PERSON "unknown-person"      /* no such resident here */
#define JUKI_R_NOT_RESIDENT   "not-resident"        /* known, but no longer resident */
#define JUKI_R_NO_MATCH       "no-match"            /* 転入通知: no resident here matches it */
#define JUKI_R_RATE_LIMITED   "rate-limited"        /* too many refused; try again later */
#define JUKI_R_REPLAY         "replay-mismatch"     /* id received before, with other bytes */
#define JUKI_R_INTERNAL       "internal-error"      /* receiver failed; sender retries */

/* Refusals of a wide-area copy (copy.request, copy.answer; docs/protocol.md §10.8). */
#define JUKI_R_PERSON_MISMATCH "person-mismatch" /* name or birth date not the code's */
#define JUKI_R_CARD_INVALID    "card-invalid"    /* the requester's card is not valid */
#define JUKI_R_RRS_REFUSED     "rrs-refused"     /* the resident record system refused */
#define JUKI_R_REVIEW_REFUSED  "review-refused"  /* the clerk of the 住所地 refused */
#define JUKI_R_UNKNOWN_REQUEST "unknown-request" /* an answer to no request sent there */
/* Refusal of a tokurei.request (docs/protocol.md §18); also card-invalid, person-mismatch. */
#define JUKI_R_NO_MOVEOUT "no-moveout" /* no 付記転出届 to the sender's municipality on record */

/* Refusals of provide.query and provide.batch: all before any record is read. */
#define JUKI_R_NOT_A_BODY         "not-a-body"         /* sender is not an agency or exec body */
#define JUKI_R_NO_STAFF_CARD      "no-staff-card"      /* inner certificate is not a staff card */
#define JUKI_R_NO_AGREEMENT       "no-agreement"       /* no such agreement with this body */
#define JUKI_R_AGREEMENT_INACTIVE "agreement-inactive" /* pending, suspended or ended */
#define JUKI_R_JIMU_NOT_AGREED    "jimu-not-agreed"    /* 事務 not in the agreement */
#define JUKI_R_ITEM_NOT_AGREED    "item-not-agreed"    /* an item asked is not allowed */
#define JUKI_R_METHOD_NOT_AGREED  "method-not-agreed"  /* online or batch not allowed */
#define JUKI_R_OVER_CAP           "over-cap"           /* the daily volume cap is reached */
#define JUKI_R_APPROVAL_REQUIRED  "approval-required"  /* bulk batch without approval */
#define JUKI_R_APPROVAL_INVALID   "approval-invalid"   /* approval does not verify */
#define JUKI_R_OTHER_PREFECTURE   "other-prefecture"   /* exec body of another prefecture */
#define JUKI_R_NOT_WATCHER        "not-watcher"        /* notice from a node not watching us */
#define JUKI_R_UNKNOWN_NOTICE     "unknown-notice"     /* ack of a notice not sent there */
#define JUKI_R_BAD_BATCH          "bad-batch"          /* batch header malformed */

struct juki_msg {
	int version;
	char id[JUKI_UUID_LEN + 1];
	char type[JUKI_TYPE_MAX];
	char from[JUKI_URN_MAX];
	char to[JUKI_URN_MAX];
	int64_t time_ms;
	char corr[JUKI_UUID_LEN + 1]; /* "" when absent */
	json_t *body;                 /* owned reference; an object */
	/*
	 * Not on the wire as such: when the receiver left the body unparsed
	 * for a handler that reads it itself (juki_frame_split(), struct
	 * juki_handler's body_text), body is {} and the body's JSON text, an
	 * object the frame reader vouched for, is body_len bytes at body_text
	 * (borrowed from the frame, valid during the handler's call); else
	 * body_text is NULL.
	 */
	const char *body_text;
	size_t body_len;
	/*
	 * Not on the wire: the staff card (urn:juki:op:agency:<id>:<staff>)
	 * whose inner TLS session carried a body's message on provide; "" when
	 * the inner certificate is the sender's own (inbound.c fills it).
	 */
	char staff[JUKI_URN_MAX];
};

enum juki_ack_status {
	JUKI_ACK_ACCEPTED,
	JUKI_ACK_DUPLICATE,
	JUKI_ACK_REJECTED,
};

struct juki_ack {
	char id[JUKI_UUID_LEN + 1];   /* the ack's own id */
	char corr[JUKI_UUID_LEN + 1]; /* the message acked; "" when it had no readable id */
	enum juki_ack_status status;
	char reason[JUKI_REASON_MAX];
	char detail[JUKI_DETAIL_MAX];
	/*
	 * An accepted ack may answer a query: body "result", an object.
	 * Borrowed from the parsed message; NULL when absent.
	 */
	const json_t *result;
};

/*
 * juki_uuid7() - a new UUIDv7 (RFC 9562) for time now_ms, 74 random bits
 * from the OpenSSL DRBG, as 36 lower-case characters plus NUL.
 * Returns 0, JUKI_EIO when no randomness is available, JUKI_ERANGE when
 * now_ms is negative or does not fit in 48 bits.
 */
int juki_uuid7(int64_t now_ms, char out[JUKI_UUID_LEN + 1]);

/*
 * juki_uuid7_from() - the UUIDv7 of time ms whose other 74 bits are taken
 * from tail (its version and variant bits overwritten): an id derived from
 * its content, the same wherever the same content is seen.  Returns 0 or
 * JUKI_ERANGE as juki_uuid7().
 */
int juki_uuid7_from(int64_t ms, const unsigned char tail[10], char out[JUKI_UUID_LEN + 1]);

/* juki_uuid_valid() - true for a canonical lower-case UUID of version 7. */
int juki_uuid_valid(const char *text);

/*
 * juki_msg_init() - fill msg with a new id and the time of clock; body is
 * stolen, on error too (it must be an object; NULL makes an empty one); corr
 * may be NULL or "", else a valid UUIDv7.
 * Returns 0, JUKI_EINVAL (bad type, identity, corr or body), JUKI_ENOMEM,
 * JUKI_EIO, JUKI_ERANGE (a clock time a UUIDv7 cannot carry).
 */
int juki_msg_init(struct juki_msg *msg, const char *type, const char *from, const char *to,
		  const char *corr, json_t *body, const struct juki_clock *clock);

/* juki_msg_clear() - release msg's body; msg may then be reused. */
void juki_msg_clear(struct juki_msg *msg);

/* juki_msg_to_json() - the wire document (new reference), or NULL on ENOMEM. */
json_t *juki_msg_to_json(const struct juki_msg *msg);

/*
 * juki_msg_from_json() - read and validate a message's header.
 * Returns 0, or JUKI_EPROTO with *reason set to a JUKI_R_* code; even then
 * msg->id holds the id when the document had a valid one (so the receiver
 * can ack it), else "".  msg holds a new reference to the body on success.
 * A doc that is not an object gives JUKI_R_BAD_JSON.  msg is overwritten:
 * clear it first if it held a body.  On JUKI_EPROTO, detail (NULL, or
 * detail_len bytes, JUKI_DETAIL_MAX will do) receives the field and the rule
 * it breaks, "to: not a juki identity", ASCII: the rejected ack's detail.
 */
int juki_msg_from_json(const json_t *doc, struct juki_msg *msg, const char **reason, char *detail,
		       size_t detail_len);

/*
 * juki_ack_new() - build an ack document for the message id corr (may be
 * "" for an unreadable message) from self to peer; reason and detail only
 * for JUKI_ACK_REJECTED (NULL otherwise; ignored for the other statuses).
 * detail is cut to JUKI_DETAIL_MAX - 1 bytes at a UTF-8 character boundary.
 * NULL on ENOMEM, or when an identity, corr, status or reason is invalid
 * (a rejection needs a reason of [a-z0-9-]).
 */
json_t *juki_ack_new(const char *corr, const char *self, const char *peer,
		     enum juki_ack_status status, const char *reason, const char *detail,
		     const struct juki_clock *clock);

/*
 * juki_ack_parse() - read an ack from a parsed message whose type is "ack".
 * An accepted or duplicate ack must name the message acked (corr); a
 * rejected one needs a reason; detail is cut to fit at a UTF-8 boundary.
 * Returns 0 or JUKI_EPROTO.
 */
int juki_ack_parse(const struct juki_msg *msg, struct juki_ack *ack);

/* juki_ack_status_name() - "accepted", "duplicate", "rejected"; "unknown" otherwise. */
const char *juki_ack_status_name(enum juki_ack_status status);

/*
 * A refusal of a message by its receiver: the reason code and detail that
 * the ack carries (§7 of docs/protocol.md).
 */
#define JUKI_REJECT 1

struct juki_reject {
	char reason[JUKI_REASON_MAX];
	char detail[JUKI_DETAIL_MAX];
	/*
	 * A handler that answers a query sets result (a new reference, an
	 * object) and returns 0: the accepted ack carries it as body "result".
	 */
	json_t *result;
	/*
	 * Or the same result as compact JSON text (an object, malloc'd, freed
	 * by the caller): a handler that writes a large result straight as
	 * text sets this instead of result.
	 */
	char *result_text;
	size_t result_len;
};

/* juki_reject_set() - fill rej and return JUKI_REJECT, for handlers' tail calls. */
int juki_reject_set(struct juki_reject *rej, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
