/*
 * juki — networking building blocks on libevent (docs/protocol.md §2, §3).
 *
 * Connections are set up in asynchronous steps, each ending in a callback:
 *
 *   juki_net_listen()        accept TCP (or UNIX) connections
 *   juki_net_accept_tls()    server side of a TLS 1.3 handshake on a socket
 *   juki_net_connect_tls()   connect to host:port and run the client handshake
 *   juki_net_wrap_tls()      a TLS session inside an existing bufferevent
 *                            (the inner, end-to-end session through a tunnel)
 *   juki_net_read_line()     one LF-terminated request/answer line
 *
 * A step that succeeds hands its bufferevent to the callback, which owns it
 * from then on; a step that fails frees what it made and says why.  Every
 * step runs in a group; freeing the group cancels the steps still pending
 * (their bufferevents are freed, their callbacks never called), which is
 * how an owner stops cleanly.
 *
 * struct juki_chan carries frames (frame.h) over an established session.
 */
#ifndef JUKI_NET_H
#define JUKI_NET_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>

#include "juki/base/ident.h"
#include "juki/wire/policy.h"
#include "juki/wire/tls.h"

#define JUKI_LINE_MAX 256

struct sockaddr;

/*
 * juki_net_addr_text() - "host:port" of a socket address, for logs
 * ("[v6]:port" for IPv6, the path for UNIX sockets).
 */
void juki_net_addr_text(const struct sockaddr *sa, char *buf, size_t len);

/* juki_net_peer_text() - the remote address of fd as juki_net_addr_text(). */
void juki_net_peer_text(evutil_socket_t fd, char *buf, size_t len);

/* A listener.  cb owns fd; sa/len is the peer's address. */
typedef void (*juki_accept_cb)(evutil_socket_t fd, const struct sockaddr *sa, int len, void *arg);
struct juki_listener;

/*
 * juki_net_listen() - listen on "host:port" / "[v6]:port" (SO_REUSEADDR,
 * non-blocking, close-on-exec).  Returns 0 or -errno / JUKI_EFORMAT with a
 * message in err.
 */
int juki_net_listen(struct event_base *base, const char *addr, juki_accept_cb cb, void *arg,
		    struct juki_listener **out, char *err, size_t errlen);

/*
 * juki_net_listen_unix() - listen on a UNIX socket at path (an old socket
 * file there is replaced), with mode applied to the file.
 */
int juki_net_listen_unix(struct event_base *base, const char *path, int mode, juki_accept_cb cb,
			 void *arg, struct juki_listener **out, char *err, size_t errlen);

/* juki_listener_free() - stop listening (removes a UNIX socket file). */
void juki_listener_free(struct juki_listener *listener);

/* juki_listener_addr() - the bound address, "127.0.0.1:7000" (port 0 resolved). */
const char *juki_listener_addr(const struct juki_listener *listener);

/* A set of steps in progress that belong to one owner. */
struct juki_net_group;

/* juki_net_group_new() - an empty group on base; NULL on ENOMEM. */
struct juki_net_group *juki_net_group_new(struct event_base *base);

/* juki_net_group_base() - the event base of the group. */
struct event_base *juki_net_group_base(const struct juki_net_group *group);

/* juki_net_group_free() - cancel every pending step and free the group; NULL is fine. */
void juki_net_group_free(struct juki_net_group *group);

/*
 * Result of a TLS step.  On success bev is the session (owned by the
 * callee now), peer its verified identity, failure JUKI_TLSF_NONE.  On
 * failure bev is NULL, failure says why and why has the details.
 */
typedef void (*juki_tls_step_cb)(struct bufferevent *bev, const struct juki_ident *peer,
				 enum juki_tls_failure failure, const char *why, void *arg);

/*
 * The pre-trust deadline.  Everything a peer must do before it is trusted
 * (the outer handshake, the CONNECT or FROM line, the inner handshake) is
 * bounded by one total deadline taken at accept: juki_net_deadline(budget).
 * Each step is then given juki_net_left(deadline, its own limit), and every
 * step's limit is a total from its start, never re-armed by the bytes that
 * arrive: a peer that trickles one byte at a time is cut off at the same
 * time as a silent one.  A step that runs out reports a timeout
 * (JUKI_TLSF_TIMEOUT, JUKI_ETIMEDOUT); once the peer is trusted the deadline
 * is simply no longer consulted.
 */

/* juki_net_deadline() - the monotonic time (juki_clock_mono_ms) budget_ms from now. */
int64_t juki_net_deadline(int64_t budget_ms);

/*
 * juki_net_left() - the time a step may take: step_ms, but no more than is
 * left until deadline (0 once it has passed: the step times out at once).
 */
int64_t juki_net_left(int64_t deadline, int64_t step_ms);

/*
 * juki_net_accept_tls() - run the server handshake on fd (taken over: it is
 * closed on failure).  timeout_ms bounds the handshake in total; running
 * out of it fails with JUKI_TLSF_TIMEOUT (as in the other TLS steps).
 */
int juki_net_accept_tls(struct juki_net_group *group, struct juki_tls *tls, evutil_socket_t fd,
			int64_t timeout_ms, juki_tls_step_cb cb, void *arg);

/*
 * juki_net_connect_tls() - connect to addr and run the client handshake.
 * When expect is not NULL the server must be that identity
 * (JUKI_TLSF_WRONG_PEER otherwise).  timeout_ms bounds connect+handshake.
 * Connection errors report JUKI_TLSF_PROTOCOL with the errno text.
 */
int juki_net_connect_tls(struct juki_net_group *group, struct juki_tls *tls, const char *addr,
			 const struct juki_ident *expect, int64_t timeout_ms, juki_tls_step_cb cb,
			 void *arg);

/*
 * juki_net_wrap_tls() - run a handshake in role inside under (taken over:
 * freed on failure, owned by the resulting session on success).  expect as
 * for juki_net_connect_tls().
 */
int juki_net_wrap_tls(struct juki_net_group *group, struct juki_tls *tls, struct bufferevent *under,
		      enum juki_tls_role role, const struct juki_ident *expect, int64_t timeout_ms,
		      juki_tls_step_cb cb, void *arg);

/*
 * Result of juki_net_read_line(): line (NUL-terminated, without CR/LF) or
 * NULL with rc JUKI_ETOOBIG (over JUKI_LINE_MAX or max), JUKI_ETIMEDOUT,
 * JUKI_ECLOSED or JUKI_EFORMAT (a NUL or control byte).  bev is handed back
 * in every case; the callee decides whether to free it.
 */
typedef void (*juki_line_cb)(struct bufferevent *bev, const char *line, int rc, void *arg);

/*
 * juki_net_read_line() - read one line from bev within timeout_ms, a total
 * from the call: bytes that arrive do not extend it.  Bytes after the line
 * stay in bev's input buffer.
 */
void juki_net_read_line(struct juki_net_group *group, struct bufferevent *bev, size_t max,
			int64_t timeout_ms, juki_line_cb cb, void *arg);

/*
 * juki_net_parse_request() - parse a tunnel request line "<verb> <urn>
 * <service>" (CONNECT from a node to a gateway, FROM from a gateway to a
 * node): exactly three single-space-separated tokens, verb as given, a node
 * identity (not an operator), a known service.  Returns 0, or JUKI_EFORMAT
 * with a short reason in *why (a static string).
 */
int juki_net_parse_request(const char *line, const char *verb, struct juki_ident *ident,
			   enum juki_service *svc, const char **why);

/* juki_net_write_line() - queue "text\n" on bev. */
int juki_net_write_line(struct bufferevent *bev, const char *text);

/*
 * juki_net_close_after_flush() - stop reading from bev (taken over), write
 * out what is queued, then free it; after timeout_ms free it regardless.
 * For a single-layer bufferevent (a socket, or TLS on a socket).
 */
void juki_net_close_after_flush(struct juki_net_group *group, struct bufferevent *bev,
				int64_t timeout_ms);

/* juki_net_deny() - queue "DENY <code> <text>\n" on bev, then close it as above. */
void juki_net_deny(struct juki_net_group *group, struct bufferevent *bev, const char *code,
		   const char *text, int64_t timeout_ms);

/* A framed channel over an established session. */
struct juki_chan;

struct juki_chan_cbs {
	/* Frames are waiting: call juki_chan_recv() until it returns 0. */
	void (*readable)(struct juki_chan *chan, void *arg);
	/* The channel broke or the peer closed; free it (from here is fine). */
	void (*closed)(struct juki_chan *chan, int rc, const char *why, void *arg);
	/* Optional: everything queued has been written out. */
	void (*drained)(struct juki_chan *chan, void *arg);
};

/*
 * juki_chan_new() - frame bev (taken over) for peer on service.
 * frame_max bounds frames both ways; idle_ms closes the channel after that
 * long without traffic (0: never).  NULL on ENOMEM (bev is freed).
 */
struct juki_chan *juki_chan_new(struct bufferevent *bev, const struct juki_ident *peer,
				const char *service, size_t frame_max, int64_t idle_ms,
				const struct juki_chan_cbs *cbs, void *arg);

/*
 * juki_chan_recv() - the next whole frame as a parsed JSON object: 1 with
 * *doc (new reference), 0 when none is complete, JUKI_EJSON for a frame that
 * is not a JSON object (consumed), JUKI_ETOOBIG / JUKI_EFRAME (the channel is
 * unusable: free it).
 */
int juki_chan_recv(struct juki_chan *chan, json_t **doc);

/*
 * juki_chan_recv_text() - as juki_chan_recv(), and with 1 also the frame's
 * payload as received (*text, malloc'd, NUL-terminated; *len bytes): what
 * the receiver digests to tell a redelivery from a replay.
 */
int juki_chan_recv_text(struct juki_chan *chan, json_t **doc, char **text, size_t *len);

/*
 * juki_chan_recv_raw() - the next whole frame's payload unparsed (*text,
 * malloc'd, NUL-terminated; *len bytes): 1, 0 when none is complete,
 * JUKI_ETOOBIG / JUKI_EFRAME (free the channel).  For a receiver that
 * parses it itself (juki_frame_split(), juki_frame_parse()).
 */
int juki_chan_recv_raw(struct juki_chan *chan, char **text, size_t *len);

/* juki_chan_send() - queue doc as one frame.  0, JUKI_ETOOBIG, JUKI_ENOMEM. */
int juki_chan_send(struct juki_chan *chan, const json_t *doc);

/* juki_chan_send_raw() - queue len bytes of serialised JSON as one frame. */
int juki_chan_send_raw(struct juki_chan *chan, const char *payload, size_t len);

/* juki_chan_pending() - bytes queued and not yet written. */
size_t juki_chan_pending(const struct juki_chan *chan);

/*
 * juki_chan_close_after_flush() - stop reading, write out what is queued
 * (bounded by a few seconds), then free the channel without calling
 * closed().  The caller must not use chan afterwards.
 */
void juki_chan_close_after_flush(struct juki_chan *chan);

const struct juki_ident *juki_chan_peer(const struct juki_chan *chan);
/* juki_chan_ssl() - the TLS connection under chan (for juki_tls_peer_still_valid). */
SSL *juki_chan_ssl(const struct juki_chan *chan);
const char *juki_chan_service(const struct juki_chan *chan);
void juki_chan_set_arg(struct juki_chan *chan, void *arg);

/* juki_chan_free() - close and free; NULL is fine. */
void juki_chan_free(struct juki_chan *chan);

#endif
