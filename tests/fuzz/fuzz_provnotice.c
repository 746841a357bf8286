/*
 * Fuzz target: the body of provide.notice as a prefecture receives it
 * (juki_provnotice_receive, node/provnotice.c), into a real store.  The
 * input is JSON text as a message's body from the national server.  A
 * notice is stored whole or not at all: accepted, every record's id is in
 * the table once; refused, the reason is one the protocol lists with a
 * detail, and nothing is stored.  Each input runs in a transaction rolled
 * back after it.
 */
#include <jansson.h>
#include <unistd.h>

#include "fuzz.h"
#include "juki/base/error.h"
#include "juki/node/provnotice.h"
#include "juki/records/provision.h"
#include "juki/wire/msg.h"

static struct juki_store *store;
static char dir[] = "/tmp/juki-fuzz-provnotice-XXXXXX";

/* The scratch store goes at exit: the store and what SQLite keeps beside it. */
static void
cleanup(void)
{
	static const char *const files[] = {"store.db", "store.db-wal", "store.db-shm",
					    "store.db-journal"};
	char path[96];

	juki_store_close(store);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct juki_schema schemas[] = {JUKI_PROVISION_SCHEMA};
	char path[96], err[256];

	(void)argc;
	(void)argv;
	FUZZ_ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	FUZZ_ASSERT(juki_store_open(path, schemas, 1, &store, err, sizeof(err)) == 0);
	atexit(cleanup);
	return 0;
}

static long long
rows(const char *id)
{
	sqlite3_stmt *st;
	long long n;

	FUZZ_ASSERT(sqlite3_prepare_v2(juki_store_db(store),
				       id != NULL ? "SELECT count(*) FROM provisions WHERE id = ?1"
						  : "SELECT count(*) FROM provisions",
				       -1, &st, NULL) == SQLITE_OK);
	if (id != NULL) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	}
	FUZZ_ASSERT(sqlite3_step(st) == SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct juki_reject rej;
	struct juki_msg msg;
	const json_t *rec;
	size_t i;
	int rc;

	memset(&msg, 0, sizeof(msg));
	memset(&rej, 0, sizeof(rej));
	msg.body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(msg.body)) {
		json_decref(msg.body);
		return 0;
	}
	snprintf(msg.type, sizeof(msg.type), "%s", JUKI_MSG_PROVIDE_NOTICE);
	snprintf(msg.from, sizeof(msg.from), "urn:juki:jlis:0");
	snprintf(msg.to, sizeof(msg.to), "urn:juki:pref:13");
	FUZZ_ASSERT(juki_store_begin(store) == 0);
	rc = juki_provnotice_receive(store, &msg, &rej);
	if (rc == 0) {
		json_array_foreach(json_object_get(msg.body, "records"), i, rec)
		{
			FUZZ_ASSERT(rows(json_string_value(json_object_get(rec, "id"))) == 1);
		}
	} else {
		FUZZ_ASSERT(rc == JUKI_REJECT);
		FUZZ_ASSERT(strcmp(rej.reason, JUKI_R_BAD_FIELD) == 0 ||
			    strcmp(rej.reason, JUKI_R_CHECK_DIGIT) == 0);
		FUZZ_ASSERT(rej.detail[0] != '\0');
		FUZZ_ASSERT(rows(NULL) == 0);
	}
	FUZZ_ASSERT(juki_store_rollback(store) == 0);
	json_decref(msg.body);
	return 0;
}
