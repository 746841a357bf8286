#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "juki/node/boardweb.h"

static json_t *
board(const char *text)
{
	json_error_t e;
	json_t *doc = json_loads(text, 0, &e);

	assert_non_null(doc);
	return doc;
}

static const char *
pref(const json_t *prefs, const char *code)
{
	return json_string_value(json_object_get(prefs, code));
}

/* The worst state of a prefecture's nodes colours its tile. */
static void
test_prefs_worst_state(void **state)
{
	json_t *b =
	    board("{\"nodes\": ["
		  "{\"node\": \"urn:juki:cs:131016\", \"pref\": \"13\", \"state\": \"up\"},"
		  "{\"node\": \"urn:juki:cs:131024\", \"pref\": \"13\", \"state\": \"down\"},"
		  "{\"node\": \"urn:juki:pref:13\", \"pref\": 13, \"state\": \"degraded\"},"
		  "{\"node\": \"urn:juki:cs:271004\", \"pref\": \"27\", \"state\": \"up\"},"
		  "{\"node\": \"urn:juki:cs:012025\", \"pref\": \"01\", \"state\": "
		  "\"intrusion\"},"
		  "{\"node\": \"urn:juki:cs:012033\", \"pref\": \"01\", \"state\": \"down\"}"
		  "]}");
	json_t *p = juki_boardweb_prefs(b);

	(void)state;
	assert_non_null(p);
	assert_int_equal(json_object_size(p), 3);
	assert_string_equal(pref(p, "13"), "down");
	assert_string_equal(pref(p, "27"), "up");
	assert_string_equal(pref(p, "01"), "intrusion");
	json_decref(p);
	json_decref(b);
}

/* What names no prefecture is left off the map; what the page cannot name is not "up". */
static void
test_prefs_odd_entries(void **state)
{
	json_t *b = board("{\"nodes\": ["
			  "{\"node\": \"urn:juki:jlis:0\", \"pref\": null, \"state\": \"down\"},"
			  "{\"node\": \"a\", \"pref\": \"00\", \"state\": \"down\"},"
			  "{\"node\": \"b\", \"pref\": \"48\", \"state\": \"down\"},"
			  "{\"node\": \"c\", \"pref\": 99, \"state\": \"down\"},"
			  "{\"node\": \"d\", \"pref\": \"1\", \"state\": \"down\"},"
			  "{\"node\": \"e\", \"pref\": \"1x\", \"state\": \"down\"},"
			  "{\"node\": \"f\", \"pref\": \"47\", \"state\": \"on fire\"},"
			  "{\"node\": \"g\", \"pref\": \"46\"},"
			  "{\"node\": \"h\", \"pref\": \"45\", \"state\": \"up\"},"
			  "\"not an object\""
			  "]}");
	json_t *p = juki_boardweb_prefs(b), *empty;

	(void)state;
	assert_non_null(p);
	assert_int_equal(json_object_size(p), 3);
	assert_string_equal(pref(p, "47"), "degraded");
	assert_string_equal(pref(p, "46"), "degraded");
	assert_string_equal(pref(p, "45"), "up");
	json_decref(p);
	json_decref(b);
	/* No nodes, or no board at all: an empty map. */
	b = board("{\"nodes\": []}");
	empty = juki_boardweb_prefs(b);
	assert_int_equal(json_object_size(empty), 0);
	json_decref(empty);
	json_decref(b);
	empty = juki_boardweb_prefs(NULL);
	assert_non_null(empty);
	assert_int_equal(json_object_size(empty), 0);
	json_decref(empty);
}

/* The page, its script and style are in the binary, each with its type; nothing else is. */
static void
test_assets(void **state)
{
	const struct juki_boardweb_asset *a;

	(void)state;
	a = juki_boardweb_asset("/");
	assert_non_null(a);
	assert_string_equal(a->type, "text/html; charset=utf-8");
	assert_true(a->len > 100 && a->data[a->len] == '\0');
	assert_non_null(strstr((const char *)a->data, "<script src=\"/board.js\""));
	/* Nothing from elsewhere: no scheme in the page. */
	assert_null(strstr((const char *)a->data, "http:"));
	assert_null(strstr((const char *)a->data, "https:"));
	a = juki_boardweb_asset("/board.js");
	assert_non_null(a);
	assert_string_equal(a->type, "text/javascript; charset=utf-8");
	assert_null(strstr((const char *)a->data, "innerHTML"));
	a = juki_boardweb_asset("/board.css");
	assert_non_null(a);
	assert_string_equal(a->type, "text/css; charset=utf-8");
	assert_null(strstr((const char *)a->data, "url("));
	assert_null(juki_boardweb_asset("/board.json"));
	assert_null(juki_boardweb_asset("/index.html"));
	assert_null(juki_boardweb_asset("/board.js/"));
	assert_null(juki_boardweb_asset(""));
}

/*
 * The map's table in the script: the 47 prefectures, codes 01..47 once each,
 * each on a tile of its own within the 14 x 13 grid the script draws.
 */
static void
test_map_table(void **state)
{
	const struct juki_boardweb_asset *js = juki_boardweb_asset("/board.js");
	const char *p, *end;
	int seen[48] = {0}, cell[13][14] = {{0}}, n = 0;

	(void)state;
	assert_non_null(js);
	p = strstr((const char *)js->data, "const PREFS = [");
	assert_non_null(p);
	end = strstr(p, "];");
	assert_non_null(end);
	while ((p = strstr(p, "[\"")) != NULL && p < end) {
		int code, row, col, used = 0;
		char name[64];

		assert_int_equal(
		    sscanf(p, "[\"%2d\", \"%63[^\"]\", %d, %d]%n", &code, name, &row, &col, &used),
		    4);
		assert_true(used > 0);
		assert_true(code >= 1 && code <= 47);
		assert_int_equal(seen[code], 0);
		seen[code] = 1;
		assert_true(row >= 0 && row < 13 && col >= 0 && col < 14);
		assert_int_equal(cell[row][col], 0);
		cell[row][col] = code;
		n++;
		p += used;
	}
	assert_int_equal(n, 47);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefs_worst_state),
	    cmocka_unit_test(test_prefs_odd_entries),
	    cmocka_unit_test(test_assets),
	    cmocka_unit_test(test_map_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
