/*
 * Provision of identity information to agencies and executive bodies at a
 * prefectural or the national server (provide.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "juki/base/clock.h"
#include "juki/base/error.h"
#include "juki/base/text.h"
#include "juki/node/alert.h"
#include "juki/node/log.h"
#include "juki/node/opcmds.h"
#include "juki/node/provide.h"
#include "juki/records/agreement.h"
#include "juki/records/approval.h"
#include "juki/records/honnin.h"
#include "juki/records/provision.h"

#define JIMU_FILE_MAX (1 << 20) /* bytes of a 事務 list file */

const struct juki_conf_key juki_provide_keys[] = {
    JUKI_CONF_SCALAR(
	struct juki_provide_conf, jimu, "jimu", JUKI_CONF_PATH, NULL, 0, 0, 0,
	"The 事務 list (CSV table,row,title of 住民基本台帳法 別表) every agreement's "
	"事務 must be on; read at start and reload.  Unset: no agreement can be added."),
    JUKI_CONF_END,
};

const struct juki_conf_key juki_provision_keys[] = {
    JUKI_CONF_SCALAR(struct juki_provision_conf, keep, "keep", JUKI_CONF_INT, "5", 0, 0, 100,
		     "Provision records (提供状況) are erased this many years after the provision "
		     "(counted as the purge counts, from its Japan day), by juki-ctl purge "
		     "(第6-8(5)ウ); 0: never."),
    JUKI_CONF_END,
};

#define CAP_ALERTS 64 /* agreements whose over-cap alert of the day is remembered */

struct juki_provide {
	struct juki_node *node;
	struct juki_jimu_list *jimu;
	/* provide-over-cap is raised once per agreement and Japan day (in memory). */
	struct {
		char agreement[JUKI_ID_MAX];
		int64_t day;
	} capped[CAP_ALERTS];
	size_t ncapped;
	/*
	 * The approval last verified in full, by the SHA-256 of its text: the
	 * later parts of its batch carrying the same approval check their own
	 * part only (juki_approval_check_part()), not the chain, the CRL and
	 * the signature again.  Forgotten on reload (a new CA or CRL).
	 */
	struct {
		int valid;
		char batch[JUKI_UUID_LEN + 1];
		char body[JUKI_URN_MAX];
		char responsible[JUKI_URN_MAX];
		int64_t count;
		size_t parts;
		unsigned char digest[EVP_MAX_MD_SIZE];
	} approved;
};

/* Whether the over-cap alert of agreement on day is still to be raised; notes it. */
static int
cap_alert_due(struct juki_provide *p, const char *agreement, int64_t day)
{
	size_t i;

	if (p == NULL) {
		return 1;
	}
	for (i = 0; i < p->ncapped; i++) {
		if (strcmp(p->capped[i].agreement, agreement) == 0) {
			if (p->capped[i].day == day) {
				return 0;
			}
			p->capped[i].day = day;
			return 1;
		}
	}
	i = p->ncapped < CAP_ALERTS ? p->ncapped++ : (size_t)(day % CAP_ALERTS);
	snprintf(p->capped[i].agreement, sizeof(p->capped[i].agreement), "%s", agreement);
	p->capped[i].day = day;
	return 1;
}

struct juki_provide *
juki_provide_of(struct juki_node *node)
{
	return juki_node_module(node, JUKI_MODULE_PROVIDE);
}

static int
load_jimu(const char *path, struct juki_jimu_list **out, char *err, size_t errlen)
{
	FILE *f;
	char *buf;
	size_t n;
	char why[200];
	int rc;

	*out = NULL;
	if (path == NULL) {
		return 0;
	}
	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "provide.jimu: %s: %s", path, strerror(errno));
		return JUKI_ECONFIG;
	}
	buf = malloc(JIMU_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		return JUKI_ENOMEM;
	}
	n = fread(buf, 1, JIMU_FILE_MAX + 1, f);
	rc = ferror(f);
	fclose(f);
	if (rc != 0 || n > JIMU_FILE_MAX) {
		free(buf);
		snprintf(err, errlen, "provide.jimu: %s: %s", path,
			 rc ? "read error" : "larger than 1 MiB");
		return JUKI_ECONFIG;
	}
	rc = juki_jimu_list_parse(buf, n, out, why, sizeof(why));
	free(buf);
	if (rc == JUKI_EFORMAT) {
		snprintf(err, errlen, "provide.jimu: %s: %s", path, why);
		return JUKI_ECONFIG;
	}
	return rc;
}

int
juki_provide_check(const struct juki_provide_conf *conf, char *err, size_t errlen)
{
	struct juki_jimu_list *list;
	int rc = load_jimu(conf->jimu, &list, err, errlen);

	juki_jimu_list_free(list);
	return rc;
}

struct juki_provide *
juki_provide_start(struct juki_node *node, const struct juki_provide_conf *conf, char *err,
		   size_t errlen)
{
	struct juki_provide *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		snprintf(err, errlen, "provide: out of memory");
		return NULL;
	}
	p->node = node;
	if (load_jimu(conf->jimu, &p->jimu, err, errlen) != 0) {
		free(p);
		return NULL;
	}
	if (juki_node_module_set(node, JUKI_MODULE_PROVIDE, p) != 0) {
		snprintf(err, errlen, "provide: already started at this node");
		juki_jimu_list_free(p->jimu);
		free(p);
		return NULL;
	}
	log_info("provide: 事務 list of %zu entries", juki_jimu_list_count(p->jimu));
	return p;
}

void
juki_provide_reload(struct juki_provide *p, const struct juki_provide_conf *conf)
{
	struct juki_jimu_list *list;
	char err[300];

	if (p == NULL) {
		return;
	}
	if (load_jimu(conf->jimu, &list, err, sizeof(err)) != 0) {
		log_warnx("provide: the 事務 list stays as it was: %s", err);
		return;
	}
	juki_jimu_list_free(p->jimu);
	p->jimu = list;
	p->approved.valid = 0;
	log_info("provide: 事務 list of %zu entries", juki_jimu_list_count(p->jimu));
}

void
juki_provide_stop(struct juki_provide *p)
{
	if (p == NULL) {
		return;
	}
	juki_node_module_clear(p->node, JUKI_MODULE_PROVIDE, p);
	juki_jimu_list_free(p->jimu);
	free(p);
}

void
juki_provide_purge_conf(const struct juki_provision_conf *conf, struct juki_purge_conf *purge)
{
	purge->provision_years = conf->keep;
}

/* -- requests ------------------------------------------------------------- */

/* What the checks of a request found: the body, the agreement, what it asks. */
struct req {
	struct juki_ident sender;
	struct juki_agreement a;
	const char *agreement;
	const char *jimu;
	const char *purpose;
	unsigned items; /* asked, and allowed once the checks passed */
	struct juki_provide_request rq;
};

/* The sender, its staff card and its prefecture: before anything of the body is read. */
static int
check_sender(struct juki_node *node, const struct juki_msg *msg, struct req *r,
	     struct juki_reject *rej)
{
	const struct juki_ident *self = juki_node_self(node);
	char pref[3];

	if (juki_ident_parse(msg->from, &r->sender) != 0 ||
	    (r->sender.kind != JUKI_KIND_AGENCY && r->sender.kind != JUKI_KIND_EXEC)) {
		return juki_reject_set(rej, JUKI_R_NOT_A_BODY,
				       "from: only an agency or executive body is provided to");
	}
	if (msg->staff[0] == '\0') {
		return juki_reject_set(rej, JUKI_R_NO_STAFF_CARD,
				       "a body asks through a staff member's card (the inner "
				       "certificate), not its own");
	}
	if (self->kind == JUKI_KIND_PREF && r->sender.kind == JUKI_KIND_EXEC &&
	    (juki_ident_pref_of(&r->sender, pref) != 0 || strcmp(pref, self->id) != 0)) {
		return juki_reject_set(rej, JUKI_R_OTHER_PREFECTURE,
				       "from: an executive body of another prefecture (ask its own "
				       "prefecture or the national server)");
	}
	return 0;
}

/* The body's form: the request, or a refusal. */
static int
read_request(const struct juki_msg *msg, int batch, struct req *r, struct juki_reject *rej)
{
	const char *reason = JUKI_R_BAD_FIELD;

	if (juki_provide_request_read(msg->body, batch, &r->rq, &reason, rej->detail,
				      sizeof(rej->detail)) != 0) {
		snprintf(rej->reason, sizeof(rej->reason), "%s", reason);
		return JUKI_REJECT;
	}
	r->agreement = r->rq.agreement;
	r->jimu = r->rq.jimu;
	r->purpose = r->rq.purpose;
	r->items = r->rq.items;
	return 0;
}

/* The agreement and the day's use: every check of the plan before any record is read. */
static int
check_agreement(struct juki_node *node, struct req *r, unsigned method, int64_t n, int64_t day,
		struct juki_reject *rej)
{
	struct juki_store *store = juki_node_store(node);
	struct juki_provide *p = juki_provide_of(node);
	struct juki_provide_ask ask;
	const char *reason = NULL;
	int64_t used = 0;
	int rc, have;

	rc = juki_agreement_get(store, r->agreement, &r->a);
	if (rc != 0 && rc != JUKI_ENOTFOUND) {
		return rc;
	}
	have = rc == 0;
	if (r->items == 0) {
		r->items = have ? r->a.items : 0;
	}
	if (have && (rc = juki_agreement_used(store, r->a.id, day, &used)) != 0) {
		return rc;
	}
	memset(&ask, 0, sizeof(ask));
	ask.sender = &r->sender;
	ask.jimu = r->jimu;
	ask.items = r->items;
	ask.method = method;
	ask.n = n;
	ask.used = used;
	if (juki_agreement_check(have ? &r->a : NULL, &ask, &reason, rej->detail,
				 sizeof(rej->detail)) != 0) {
		snprintf(rej->reason, sizeof(rej->reason), "%s", reason);
		if (strcmp(reason, JUKI_R_OVER_CAP) == 0 && cap_alert_due(p, r->a.id, day)) {
			juki_alert(juki_node_alerts(node), "provide-over-cap", r->sender.urn, NULL,
				   "agreement %s: the daily cap of %lld queries is reached",
				   r->a.id, (long long)r->a.daily_cap);
		}
		return JUKI_REJECT;
	}
	if (p == NULL || juki_jimu_list_title(p->jimu, r->jimu) == NULL) {
		return juki_reject_set(rej, JUKI_R_JIMU_NOT_AGREED,
				       "jimu: no longer on this server's 事務 list");
	}
	return 0;
}

/* -- answers ------------------------------------------------------------- */

/* The allowed items of a current record: code, lgcode, reason, its date, and the person. */
static json_t *
answer_of(const char *code, const char *lgcode, const char *reason, const char *reason_date,
	  const json_t *person, unsigned items)
{
	json_t *rec = json_object();

	if (rec == NULL) {
		return NULL;
	}
	if (items & JUKI_ITEM_CODE) {
		json_object_set_new(rec, "code", json_string(code));
	}
	if (items & JUKI_ITEM_NAME) {
		json_object_set(rec, "name", json_object_get(person, "name"));
		if (json_object_get(person, "kana") != NULL) {
			json_object_set(rec, "kana", json_object_get(person, "kana"));
		}
	}
	if (items & JUKI_ITEM_BIRTH) {
		json_object_set(rec, "birth", json_object_get(person, "birth"));
	}
	if (items & JUKI_ITEM_SEX) {
		json_object_set(rec, "sex", json_object_get(person, "sex"));
	}
	if (items & JUKI_ITEM_ADDRESS) {
		json_object_set(rec, "address", json_object_get(person, "address"));
		json_object_set_new(rec, "lgcode", json_string(lgcode));
	}
	if (items & JUKI_ITEM_CHANGE) {
		json_object_set_new(rec, "change",
				    json_pack("{s:s,s:s}", "reason", reason, "date", reason_date));
	}
	return rec;
}

#define PERSON_ITEMS (JUKI_ITEM_NAME | JUKI_ITEM_BIRTH | JUKI_ITEM_SEX | JUKI_ITEM_ADDRESS)
#define NPERSON      5 /* name, kana, birth, sex, address: as by_code() extracts them */

/*
 * The n values of a JSON array's text (as json_extract() with several paths
 * returns them): each as it is written there, a value's own JSON text.
 * Returns 0, or JUKI_EFORMAT for anything else.
 */
static int
split_values(const char *s, const char *v[], size_t vlen[], size_t n)
{
	size_t k = 0;
	int depth = 0, str = 0;
	const char *start;

	if (s == NULL || *s++ != '[') {
		return JUKI_EFORMAT;
	}
	for (start = s; *s != '\0'; s++) {
		if (str) {
			if (*s == '\\' && s[1] != '\0') {
				s++;
			} else if (*s == '"') {
				str = 0;
			}
			continue;
		}
		if (*s == '"') {
			str = 1;
		} else if (*s == '[' || *s == '{') {
			depth++;
		} else if ((*s == ']' || *s == '}') && depth > 0) {
			depth--;
		} else if (depth == 0 && (*s == ',' || *s == ']')) {
			if (k == n) {
				return JUKI_EFORMAT;
			}
			v[k] = start;
			vlen[k++] = (size_t)(s - start);
			if (*s == ']') {
				return k == n && s[1] == '\0' ? 0 : JUKI_EFORMAT;
			}
			start = s + 1;
		}
	}
	return JUKI_EFORMAT;
}

/* A member "key": value (value as JSON text), after a comma unless first. */
static int
put_member(struct juki_text *t, int *first, const char *key, const char *v, size_t n)
{
	int rc = *first ? 0 : juki_text_put(t, ",", 1);

	*first = 0;
	rc = rc ? rc : juki_text_str(t, key);
	rc = rc ? rc : juki_text_put(t, ":", 1);
	return rc ? rc : juki_text_put(t, v, n);
}

/* Whether a value's text is a value at all (a missing item is absent, as in answer_of()). */
#define PRESENT(v, n) ((v) != NULL && !((n) == 4 && memcmp((v), "null", 4) == 0))

/*
 * The record object of answer_of(), written as text: the same members in the
 * same order, the person's items as the stored record writes them.
 */
static int
record_text(struct juki_text *t, const char *code, const char *lgcode, const char *reason,
	    const char *reason_date, const char *const pv[NPERSON], const size_t pn[NPERSON],
	    unsigned items)
{
	static const char *const keys[NPERSON] = {"name", "kana", "birth", "sex", "address"};
	static const unsigned wants[NPERSON] = {JUKI_ITEM_NAME, JUKI_ITEM_NAME, JUKI_ITEM_BIRTH,
						JUKI_ITEM_SEX, JUKI_ITEM_ADDRESS};
	int first = 1, rc = juki_text_put(t, "{", 1);
	size_t i;

	if (rc == 0 && (items & JUKI_ITEM_CODE)) {
		rc = put_member(t, &first, "code", "", 0);
		rc = rc ? rc : juki_text_str(t, code);
	}
	for (i = 0; rc == 0 && i < NPERSON; i++) {
		if ((items & wants[i]) && PRESENT(pv[i], pn[i])) {
			rc = put_member(t, &first, keys[i], pv[i], pn[i]);
		}
	}
	if (rc == 0 && (items & JUKI_ITEM_ADDRESS)) {
		rc = put_member(t, &first, "lgcode", "", 0);
		rc = rc ? rc : juki_text_str(t, lgcode);
	}
	if (rc == 0 && (items & JUKI_ITEM_CHANGE)) {
		rc = put_member(t, &first, "change", "{\"reason\":", 10);
		rc = rc ? rc : juki_text_str(t, reason);
		rc = rc ? rc : juki_text_lit(t, ",\"date\":");
		rc = rc ? rc : juki_text_str(t, reason_date);
		rc = rc ? rc : juki_text_put(t, "}", 1);
	}
	return rc ? rc : juki_text_put(t, "}", 1);
}

/*
 * The current record of code, written into t as answer_of()'s object: one
 * primary-key read; SQLite's own JSON reader takes the person's items out
 * of the stored record in one call (one parse, one walk), and only when one
 * is asked.  Returns 0, or JUKI_ENOTFOUND (nothing written), JUKI_ESTORE,
 * JUKI_ENOMEM.
 */
static int
by_code(struct juki_store *store, const char *code, unsigned items, struct juki_text *t)
{
	static const char sql_plain[] =
	    "SELECT lgcode, reason, reason_date FROM honnin WHERE code = ?1";
	static const char sql_person[] =
	    "SELECT lgcode, reason, reason_date, json_extract(CAST(rec AS TEXT), '$.person.name',"
	    " '$.person.kana', '$.person.birth', '$.person.sex', '$.person.address')"
	    " FROM honnin WHERE code = ?1";
	int person = (items & PERSON_ITEMS) != 0;
	sqlite3_stmt *st = juki_store_prepare(store, person ? sql_person : sql_plain);
	const char *pv[NPERSON] = {NULL};
	size_t pn[NPERSON] = {0};
	int rc;

	if (st == NULL) {
		return JUKI_ESTORE;
	}
	sqlite3_bind_text(st, 1, code, JUKI_JUMIN_CODE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? JUKI_ENOTFOUND : JUKI_ESTORE;
	}
	if (person &&
	    split_values((const char *)sqlite3_column_text(st, 3), pv, pn, NPERSON) != 0) {
		sqlite3_reset(st);
		return JUKI_ESTORE;
	}
	rc = record_text(t, code, (const char *)sqlite3_column_text(st, 0),
			 (const char *)sqlite3_column_text(st, 1),
			 (const char *)sqlite3_column_text(st, 2), pv, pn, items);
	sqlite3_reset(st);
	return rc;
}

/* A tree appended to t as compact text (as the frame would write it). */
static int
put_json(struct juki_text *t, const json_t *v)
{
	char *x = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;
	int rc = x != NULL ? juki_text_lit(t, x) : JUKI_ENOMEM;

	free(x);
	return rc;
}

/*
 * The one current record whose four items are exactly these (the operator
 * port's lookup, 第4-4(7)), and whose address is of lgcode.  Two or more
 * people: none is given (no guess).  *code receives the found one's code.
 */
static int
by_four(struct juki_store *store, const struct juki_provide_query *q, unsigned items, json_t **rec,
	char code[JUKI_JUMIN_CODE_LEN + 1])
{
	json_t *found, *one = NULL, *c;
	size_t i;
	int more = 0, n = 0;

	*rec = NULL;
	found = juki_honnin_find(store, q->name, q->birth, q->sex, q->address, 8, &more);
	if (found == NULL) {
		return JUKI_ESTORE;
	}
	json_array_foreach(found, i, c)
	{
		const char *lg = json_string_value(json_object_get(c, "lgcode"));

		if (lg != NULL && strcmp(lg, q->lgcode) == 0) {
			one = c;
			n++;
		}
	}
	if (n != 1 || more) {
		json_decref(found);
		return JUKI_ENOTFOUND;
	}
	snprintf(code, JUKI_JUMIN_CODE_LEN + 1, "%s",
		 json_string_value(json_object_get(one, "code")));
	*rec = answer_of(code, q->lgcode, json_string_value(json_object_get(one, "reason")),
			 json_string_value(json_object_get(one, "reason_date")),
			 json_object_get(one, "person"), items);
	json_decref(found);
	return *rec != NULL ? 0 : JUKI_ENOMEM;
}

int
juki_provide_record(struct juki_node *node, const char *code, const char *body, const char *staff,
		    const char *agreement, const char *jimu, unsigned items, const char *purpose,
		    const char *request)
{
	struct juki_provision p;
	char list[64];

	juki_items_text(items, list, sizeof(list));
	memset(&p, 0, sizeof(p));
	p.kind = "provide";
	p.code = code;
	p.body = body;
	p.staff = staff;
	p.agreement = agreement;
	p.jimu = jimu;
	p.items = list;
	p.purpose = purpose;
	p.time_ms = juki_node_now_ms(node);
	p.request = request;
	p.origin = juki_node_self(node)->urn;
	return juki_provision_add(juki_node_store(node), &p);
}

/*
 * One query answered into t: {"found":true,"record":{...}} with its
 * provision record, or {"found":false} -- without the closing brace, so
 * the caller may add members.
 */
static int
answer_query(struct juki_node *node, const struct juki_msg *msg, const struct req *r,
	     const struct juki_provide_query *q, struct juki_text *t)
{
	static const char found[] = "{\"found\":true,\"record\":";
	struct juki_store *store = juki_node_store(node);
	char code[JUKI_JUMIN_CODE_LEN + 1];
	size_t at = t->len;
	json_t *rec = NULL;
	int rc;

	if ((rc = juki_text_lit(t, found)) != 0) {
		return rc;
	}
	if (q->code[0] != '\0') {
		snprintf(code, sizeof(code), "%s", q->code);
		rc = by_code(store, q->code, r->items, t);
	} else if ((rc = by_four(store, q, r->items, &rec, code)) == 0) {
		rc = put_json(t, rec);
		json_decref(rec);
	}
	if (rc == JUKI_ENOTFOUND) {
		t->len = at;
		return juki_text_lit(t, "{\"found\":false");
	}
	if (rc != 0) {
		return rc;
	}
	return juki_provide_record(node, code, r->sender.urn, msg->staff, r->a.id, r->jimu,
				   r->items, r->purpose, msg->id);
}

/*
 * What the body must keep to (第6-8(1)イ: erase what it received when it no
 * longer needs it): the agreement's keep_days and the Japan day they end on,
 * as members after others.
 */
static int
add_retention(struct juki_text *t, const struct juki_agreement *a, int64_t now)
{
	char day[16];
	int rc;

	if (juki_clock_date(juki_clock_day_start(juki_clock_today(now) + a->keep_days), day,
			    sizeof(day)) != 0) {
		return 0;
	}
	rc = juki_text_lit(t, ",\"keep_days\":");
	rc = rc ? rc : juki_text_int(t, a->keep_days);
	rc = rc ? rc : juki_text_lit(t, ",\"erase_by\":");
	return rc ? rc : juki_text_str(t, day);
}

/* The result's text handed to the ack (struct juki_reject). */
static int
give_result(struct juki_reject *rej, struct juki_text *t)
{
	int rc = juki_text_put(t, "}", 1);

	if (rc != 0) {
		juki_text_free(t);
		return rc;
	}
	rej->result_text = t->buf;
	rej->result_len = t->len;
	t->buf = NULL;
	return 0;
}

int
juki_provide_handle_query(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	struct juki_text t = {0};
	struct req r;
	int64_t day = juki_clock_today(juki_node_now_ms(node));
	int rc;

	memset(&r, 0, sizeof(r));
	if ((rc = check_sender(node, msg, &r, rej)) != 0 ||
	    (rc = read_request(msg, 0, &r, rej)) != 0 ||
	    (rc = check_agreement(node, &r, JUKI_METHOD_ONLINE, 1, day, rej)) != 0) {
		return rc;
	}
	if ((rc = juki_agreement_count(juki_node_store(node), r.a.id, day, 1)) != 0 ||
	    (rc = answer_query(node, msg, &r, &r.rq.query, &t)) != 0 ||
	    (rc = add_retention(&t, &r.a, juki_node_now_ms(node))) != 0) {
		juki_text_free(&t);
		return rc;
	}
	return give_result(rej, &t);
}

/* The SHA-256 of approval's text (keys sorted): 0, or a negative code. */
static int
approval_digest(const json_t *approval, unsigned char md[EVP_MAX_MD_SIZE])
{
	char *text = json_dumps(approval, JSON_COMPACT | JSON_SORT_KEYS);
	unsigned int n = 0;
	int ok;

	if (text == NULL) {
		return JUKI_ENOMEM;
	}
	memset(md, 0, EVP_MAX_MD_SIZE);
	ok = EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL) == 1;
	free(text);
	return ok ? 0 : JUKI_ETLS;
}

/* Whether approval is the one verified in full for this batch of this body. */
static int
approval_known(const struct juki_provide *p, const struct juki_approval_part *ap,
	       const char *responsible, const unsigned char md[EVP_MAX_MD_SIZE])
{
	return p != NULL && p->approved.valid && strcmp(p->approved.batch, ap->batch_id) == 0 &&
	       strcmp(p->approved.body, ap->body) == 0 &&
	       strcmp(p->approved.responsible, responsible) == 0 &&
	       p->approved.count == ap->count && p->approved.parts == ap->parts &&
	       memcmp(p->approved.digest, md, EVP_MAX_MD_SIZE) == 0;
}

static void
approval_note(struct juki_provide *p, const struct juki_approval_part *ap, const char *responsible,
	      const unsigned char md[EVP_MAX_MD_SIZE])
{
	if (p == NULL) {
		return;
	}
	snprintf(p->approved.batch, sizeof(p->approved.batch), "%s", ap->batch_id);
	snprintf(p->approved.body, sizeof(p->approved.body), "%s", ap->body);
	snprintf(p->approved.responsible, sizeof(p->approved.responsible), "%s", responsible);
	p->approved.count = ap->count;
	p->approved.parts = ap->parts;
	memcpy(p->approved.digest, md, EVP_MAX_MD_SIZE);
	p->approved.valid = 1;
}

int
juki_provide_handle_batch(void *ctx, const struct juki_msg *msg, struct juki_reject *rej)
{
	struct juki_node *node = ctx;
	const struct juki_node_conf *nc = juki_node_conf(node);
	struct juki_store *store = juki_node_store(node);
	struct juki_batch_part *bp;
	struct juki_approval_part ap;
	unsigned char md[EVP_MAX_MD_SIZE];
	struct req r;
	struct juki_text t = {0};
	const json_t *v;
	int64_t now = juki_node_now_ms(node), day = juki_clock_today(now);
	int64_t t0 = juki_clock_mono_ms();
	size_t i;
	int rc, known;

	memset(&r, 0, sizeof(r));
	if ((rc = check_sender(node, msg, &r, rej)) != 0 ||
	    (rc = read_request(msg, 1, &r, rej)) != 0 ||
	    (rc = check_agreement(node, &r, JUKI_METHOD_BATCH, r.rq.batch.n, day, rej)) != 0) {
		return rc;
	}
	bp = &r.rq.batch;
	if (bp->count > r.a.bulk_threshold || r.rq.approval != NULL) {
		if (r.rq.approval == NULL) {
			return juki_reject_set(rej, JUKI_R_APPROVAL_REQUIRED,
					       "approval: a batch of %lld queries (more than %lld) "
					       "needs the approval of %s",
					       (long long)bp->count, (long long)r.a.bulk_threshold,
					       r.a.responsible);
		}
		memset(&ap, 0, sizeof(ap));
		ap.body = r.sender.urn;
		ap.batch_id = bp->id;
		ap.count = bp->count;
		ap.part = (size_t)bp->part;
		ap.parts = (size_t)bp->parts;
		ap.queries = r.rq.queries;
		if ((rc = approval_digest(r.rq.approval, md)) != 0) {
			return rc;
		}
		known = approval_known(juki_provide_of(node), &ap, r.a.responsible, md);
		rc = known
			 ? juki_approval_check_part(r.rq.approval, &ap, rej->detail,
						    sizeof(rej->detail))
			 : juki_approval_verify(r.rq.approval, &ap, r.a.responsible, nc->tls.ca,
						nc->tls.crl, now, rej->detail, sizeof(rej->detail));
		if (rc == 0 && !known) {
			approval_note(juki_provide_of(node), &ap, r.a.responsible, md);
		}
		if (rc == JUKI_EAUTH) {
			snprintf(rej->reason, sizeof(rej->reason), "%s", JUKI_R_APPROVAL_INVALID);
			juki_alert(juki_node_alerts(node), "provide-approval-invalid", r.sender.urn,
				   NULL, "batch %s under agreement %s: %s", bp->id, r.a.id,
				   rej->detail);
			return JUKI_REJECT;
		}
		if (rc == JUKI_EFORMAT || rc == JUKI_ECHECKDIGIT) {
			snprintf(rej->reason, sizeof(rej->reason), "%s",
				 rc == JUKI_ECHECKDIGIT ? JUKI_R_CHECK_DIGIT : JUKI_R_BAD_FIELD);
			return JUKI_REJECT;
		}
		if (rc != 0) {
			log_warnx("provide: cannot verify an approval (CA or CRL): %s",
				  juki_strerror(rc));
			return rc;
		}
	}
	bp->body = r.sender.urn;
	bp->agreement = r.a.id;
	rc = juki_batch_take(store, bp, now, rej->detail, sizeof(rej->detail));
	if (rc == JUKI_EINVAL) {
		snprintf(rej->reason, sizeof(rej->reason), "%s", JUKI_R_BAD_BATCH);
		return JUKI_REJECT;
	}
	if (rc != 0 || (rc = juki_agreement_count(store, r.a.id, day, bp->n)) != 0) {
		return rc;
	}
	if ((rc = juki_text_lit(&t, "{\"answers\":[")) != 0) {
		return rc;
	}
	json_array_foreach(r.rq.queries, i, v)
	{
		struct juki_provide_query q;
		struct juki_field_error fe;

		if (i > 0 && (rc = juki_text_put(&t, ",", 1)) != 0) {
			break;
		}
		if (juki_provide_query_from_json(v, NULL, &q, &fe) != 0) {
			json_t *refused =
			    json_pack("{s:s,s:s}", "refused",
				      fe.reason ? fe.reason : JUKI_R_BAD_FIELD, "field", fe.field);

			rc = put_json(&t, refused);
			json_decref(refused);
		} else if ((rc = answer_query(node, msg, &r, &q, &t)) == 0) {
			rc = juki_text_put(&t, "}", 1);
		}
		if (rc != 0) {
			break;
		}
	}
	rc = rc ? rc : juki_text_put(&t, "]", 1);
	rc = rc ? rc : add_retention(&t, &r.a, now);
	if (rc != 0) {
		juki_text_free(&t);
		return rc;
	}
	log_debug("provide: batch %s part %lld of %s: %lld queries in %lld ms", bp->id,
		  (long long)bp->part, r.sender.urn, (long long)bp->n,
		  (long long)(juki_clock_mono_ms() - t0));
	return give_result(rej, &t);
}

/* -- control commands ------------------------------------------------------ */

/* The agreement named, also the history's target: an id of [a-z0-9-] (juki_agreement_from_json()).
 */
static int
id_of(struct juki_node *node, const json_t *args, const char **id, struct juki_ctl_error *err)
{
	*id = json_string_value(json_object_get(args, "id"));
	if (*id == NULL || (*id)[0] == '\0' || strlen(*id) >= JUKI_ID_MAX ||
	    strspn(*id, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(*id)) {
		return juki_ctl_fail(err, "usage", "id: the id of an agreement, [a-z0-9-]");
	}
	juki_opcmds_note(juki_node_opcmds(node), *id, NULL);
	return 0;
}

int
juki_provide_cmd_add(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_provide *p = juki_provide_of(node);
	const struct juki_caller *caller = juki_opcmds_caller(juki_node_opcmds(node));
	struct juki_agreement a;
	char field[32], detail[200], note[200];
	int rc;

	if (juki_agreement_from_json(args, &a, field, sizeof(field), detail, sizeof(detail)) != 0) {
		return juki_ctl_fail(err, "usage", "%s: %s", field, detail);
	}
	/* A feed to a certification authority (第6-8(6)) names no 事務: nothing to check. */
	if (a.njimu > 0 && (p == NULL || p->jimu == NULL)) {
		return juki_ctl_fail(err, "usage",
				     "jimu: this server has no 事務 list (provide.jimu): no "
				     "agreement can be checked against it");
	}
	for (size_t i = 0; i < a.njimu; i++) {
		if (juki_jimu_list_title(p->jimu, a.jimu[i]) == NULL) {
			return juki_ctl_fail(
			    err, "usage", "jimu: %s is not on this server's 事務 list", a.jimu[i]);
		}
	}
	snprintf(a.added_by, sizeof(a.added_by), "%s", caller ? caller->who : "unknown");
	a.added_ms = a.changed_ms = juki_node_now_ms(node);
	rc = juki_agreement_insert(juki_node_store(node), &a);
	if (rc == JUKI_EDUP) {
		return juki_ctl_fail(err, "conflict", "agreement %s exists", a.id);
	}
	if (rc != 0) {
		return juki_ctl_fail(err, "internal", "store: %s",
				     juki_store_errmsg(juki_node_store(node)));
	}
	snprintf(note, sizeof(note), "agreement=%s body=%s state=pending", a.id, a.body);
	juki_opcmds_note(juki_node_opcmds(node), a.id, note);
	log_notice("provide: agreement %s with %s added by %s, pending approval", a.id, a.body,
		   a.added_by);
	*result = juki_agreement_to_json(&a);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

int
juki_provide_cmd_show(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	struct juki_agreement a;
	const char *id;
	int64_t used = 0;
	int rc;

	if (id_of(node, args, &id, err) != 0) {
		return JUKI_EINVAL;
	}
	rc = juki_agreement_get(juki_node_store(node), id, &a);
	if (rc == JUKI_ENOTFOUND) {
		return juki_ctl_fail(err, "not-found", "no agreement %s", id);
	}
	if (rc != 0 || juki_agreement_used(juki_node_store(node), id,
					   juki_clock_today(juki_node_now_ms(node)), &used) != 0) {
		return juki_ctl_fail(err, "internal", "store: %s",
				     juki_store_errmsg(juki_node_store(node)));
	}
	*result = juki_agreement_to_json(&a);
	if (*result == NULL) {
		return JUKI_ENOMEM;
	}
	json_object_set_new(*result, "used_today", json_integer((json_int_t)used));
	return 0;
}

int
juki_provide_cmd_list(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_node *node = ctx;
	const char *state = json_string_value(json_object_get(args, "state"));
	json_t *list;

	if (json_object_get(args, "state") != NULL &&
	    (state == NULL || (strcmp(state, "pending") != 0 && strcmp(state, "active") != 0 &&
			       strcmp(state, "suspended") != 0 && strcmp(state, "ended") != 0))) {
		return juki_ctl_fail(err, "usage", "state: pending, active, suspended or ended");
	}
	list = juki_agreement_list_json(juki_node_store(node), state);
	if (list == NULL) {
		return juki_ctl_fail(err, "internal", "store: %s",
				     juki_store_errmsg(juki_node_store(node)));
	}
	*result =
	    json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(list), "agreements", list);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

static int
change_state(struct juki_node *node, const json_t *args, enum juki_agreement_action action,
	     json_t **result, struct juki_ctl_error *err)
{
	static const char *const verbs[] = {"approve", "suspend", "resume", "end"};
	const struct juki_caller *caller = juki_opcmds_caller(juki_node_opcmds(node));
	const char *who = caller ? caller->who : "unknown";
	struct juki_agreement a;
	enum juki_agreement_state next;
	const char *id, *was;
	char note[200];
	int rc;

	if (id_of(node, args, &id, err) != 0) {
		return JUKI_EINVAL;
	}
	rc = juki_agreement_get(juki_node_store(node), id, &a);
	if (rc == JUKI_ENOTFOUND) {
		return juki_ctl_fail(err, "not-found", "no agreement %s", id);
	}
	if (rc != 0) {
		return juki_ctl_fail(err, "internal", "store: %s",
				     juki_store_errmsg(juki_node_store(node)));
	}
	was = juki_agreement_state_name(a.state);
	if (juki_agreement_next(a.state, action, &next) != 0) {
		return juki_ctl_fail(err, "conflict", "agreement %s is %s: it cannot %s", id, was,
				     action == JUKI_AGREEMENT_END ? "end again" : verbs[action]);
	}
	if (action == JUKI_AGREEMENT_APPROVE) {
		if (strcmp(a.added_by, who) == 0) {
			return juki_ctl_fail(err, "forbidden",
					     "agreement %s was added by you: another supervisor "
					     "approves it",
					     id);
		}
		snprintf(a.approved_by, sizeof(a.approved_by), "%s", who);
		a.approved_ms = juki_node_now_ms(node);
	}
	a.state = next;
	a.changed_ms = juki_node_now_ms(node);
	if (juki_agreement_update_state(juki_node_store(node), &a) != 0) {
		return juki_ctl_fail(err, "internal", "store: %s",
				     juki_store_errmsg(juki_node_store(node)));
	}
	snprintf(note, sizeof(note), "agreement=%s %s->%s", a.id, was,
		 juki_agreement_state_name(next));
	juki_opcmds_note(juki_node_opcmds(node), a.id, note);
	log_notice("provide: agreement %s with %s: %s -> %s by %s", a.id, a.body, was,
		   juki_agreement_state_name(next), who);
	*result = juki_agreement_to_json(&a);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

int
juki_provide_cmd_approve(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return change_state(ctx, args, JUKI_AGREEMENT_APPROVE, result, err);
}

int
juki_provide_cmd_suspend(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return change_state(ctx, args, JUKI_AGREEMENT_SUSPEND, result, err);
}

int
juki_provide_cmd_resume(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return change_state(ctx, args, JUKI_AGREEMENT_RESUME, result, err);
}

int
juki_provide_cmd_end(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	return change_state(ctx, args, JUKI_AGREEMENT_END, result, err);
}

int
juki_provide_cmd_jimu(void *ctx, const json_t *args, json_t **result, struct juki_ctl_error *err)
{
	struct juki_provide *p = juki_provide_of(ctx);
	json_t *list = juki_jimu_list_json(p ? p->jimu : NULL);

	(void)args;
	(void)err;
	if (list == NULL) {
		return JUKI_ENOMEM;
	}
	*result = json_pack("{s:I,s:o}", "total", (json_int_t)json_array_size(list), "jimu", list);
	return *result != NULL ? 0 : JUKI_ENOMEM;
}

json_t *
juki_provide_status(struct juki_node *node)
{
	static const char sql[] = "SELECT state, count(*) FROM agreements GROUP BY state";
	struct juki_provide *p = juki_provide_of(node);
	struct juki_store *store = juki_node_store(node);
	sqlite3_stmt *st = juki_store_prepare(store, sql);
	json_t *states =
	    json_pack("{s:i,s:i,s:i,s:i}", "pending", 0, "active", 0, "suspended", 0, "ended", 0);

	if (st != NULL && states != NULL) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			json_object_set_new(
			    states,
			    juki_agreement_state_name(
				(enum juki_agreement_state)sqlite3_column_int(st, 0)),
			    json_integer(sqlite3_column_int64(st, 1)));
		}
		sqlite3_reset(st);
	}
	return json_pack("{s:o*,s:I,s:I}", "agreements", states, "provisions",
			 (json_int_t)juki_provision_count(store), "jimu",
			 (json_int_t)juki_jimu_list_count(p ? p->jimu : NULL));
}
