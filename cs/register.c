#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csd.h"
#include "juki/base/error.h"
#include "juki/node/log.h"

int
csd_op_init(struct csd *cs, struct csd_op *op)
{
	const struct juki_node_conf *nc = juki_node_conf(cs->node);

	memset(op, 0, sizeof(*op));
	op->cs = cs;
	op->now = juki_node_now_ms(cs->node);
	/* Room for the envelope of the message: a quarter of the frame is plenty. */
	op->batch =
	    juki_batcher_new(juki_node_store(cs->node), juki_node_self(cs->node)->urn, cs->pref.urn,
			     (size_t)nc->honnin.batch_records, (size_t)nc->limits.frame_max * 3 / 4,
			     juki_node_clock(cs->node));
	op->counter = juki_counter_new();
	if (op->batch == NULL || op->counter == NULL) {
		csd_op_free(op);
		return JUKI_ENOMEM;
	}
	return 0;
}

int
csd_op_record(struct csd_op *op, struct juki_change *c)
{
	enum juki_apply_outcome outcome;
	size_t len;
	char *text;
	int rc;

	if (strcmp(c->lgcode, juki_node_self(op->cs->node)->id) != 0) {
		return JUKI_EINVAL;
	}
	c->recorded_ms = op->now;
	c->kind = juki_change_kind_of(c);
	/* One JSON text of the record: the one kept here and the one sent on. */
	text = juki_change_text(c, &len);
	rc = text == NULL ? JUKI_ENOMEM
			  : juki_honnin_apply_text(juki_node_store(op->cs->node), c, text, len,
						   NULL, op->now, NULL, &outcome);
	if (rc != 0) {
		free(text);
		return rc;
	}
	/* A change recorded here is always newer than what was held: versions only grow. */
	if (outcome != JUKI_APPLIED_CURRENT) {
		log_error("csd: change %s v%lld not current after recording", c->reason->name,
			  (long long)c->version);
		free(text);
		return JUKI_EINVAL;
	}
	rc = juki_batcher_add_text(op->batch, text, len);
	free(text);
	if (rc != 0 ||
	    (rc = juki_counter_add(op->counter, JUKI_COUNT_SENT, op->cs->pref.urn, c)) != 0) {
		return rc;
	}
	op->changes++;
	return 0;
}

int
csd_op_finish(struct csd_op *op)
{
	int rc = juki_batcher_flush(op->batch);

	if (rc == 0) {
		rc = juki_counter_flush(op->counter, juki_node_store(op->cs->node));
	}
	return rc;
}

void
csd_op_free(struct csd_op *op)
{
	juki_batcher_free(op->batch);
	juki_counter_free(op->counter);
	op->batch = NULL;
	op->counter = NULL;
}

int
csd_held(struct csd *cs, const char *code, struct juki_change *c)
{
	return juki_honnin_current(juki_node_store(cs->node), code, c);
}

int
csd_resident(const struct csd *cs, const struct juki_change *c)
{
	return c->kind != JUKI_CHANGE_REMOVAL &&
	       strcmp(c->lgcode, juki_node_self(cs->node)->id) == 0;
}
