/*
 * What a receiver spends per record of a honnin.batch frame, by step.  The
 * tree's way (receivers until 2026-12-07, and still for a record in another
 * form than a CS writes): the frame parsed into a tree (jansson), each record
 * validated (juki_change_from_json), its text written back by jansson
 * (json_dumps, as receivers did before) and by juki_change_text, and the tree
 * freed.  The text's way (receivers now): the frame split into its header
 * and its body's bytes, the body vouched for as strict JSON
 * (juki_frame_split), and each record read and validated in place
 * (juki_change_from_text), its text the bytes that came.
 * The machine's baseline in the same run: copying the frame's bytes
 * (memcpy), to which each step is also given as a ratio.
 *
 *   bench_records [RECORDS [ROUNDS]]     default 5000 records, 20 rounds
 *
 * The records are synthetic: generated codes with valid check digits, names
 * and addresses from short lists.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "juki/base/codes.h"
#include "juki/records/honnin.h"
#include "juki/wire/frame.h"

static const char *const surnames[] = {"佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本"};
static const char *const given[] = {"花子", "太郎", "陽菜", "蓮", "結衣", "湊", "葵", "大翔"};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A 住民票コード: 10 pseudo-random digits and their check digit. */
static void
make_code(unsigned *seed, char code[12])
{
	for (int i = 0; i < 10; i++) {
		code[i] = (char)('0' + rand_r(seed) % 10);
	}
	code[10] = (char)juki_jumin_check_digit(code);
	code[11] = '\0';
}

/* The frame of a honnin.batch with n records, as a sender writes it. */
static int
want_batch(const char *type, void *arg)
{
	(void)arg;
	return strcmp(type, "honnin.batch") == 0;
}

/* The start of each record of the canonical body at body (n of them), in starts. */
static int
cut_records(const char *body, size_t n, const char **starts, size_t *lens)
{
	const char *p = body + strlen("{\"records\":[");

	for (size_t i = 0; i < n; i++) {
		/* A record of this bench ends at the first "}}" (no braces inside). */
		const char *q = strstr(p, "}}");

		if (q == NULL) {
			return -1;
		}
		starts[i] = p;
		lens[i] = (size_t)(q + 2 - p);
		p = q + 3;
	}
	return 0;
}

static char *
make_frame(size_t n, size_t *len)
{
	size_t cap = n * 400 + 256, off = 0;
	char *buf = malloc(cap);
	unsigned seed = 5;

	if (buf == NULL) {
		return NULL;
	}
	off +=
	    (size_t)snprintf(buf, cap,
			     "{\"v\":1,\"type\":\"honnin.batch\",\"from\":\"urn:juki:cs:131016\","
			     "\"body\":{\"records\":[");
	for (size_t i = 0; i < n; i++) {
		char code[12];

		make_code(&seed, code);
		off += (size_t)snprintf(
		    buf + off, cap - off,
		    "%s{\"code\":\"%s\",\"lgcode\":\"131016\",\"version\":1,\"reason\":\"転入\","
		    "\"reason_date\":\"2026-11-20\",\"recorded\":\"2026-11-20T01:00:00.000Z\","
		    "\"person\":{\"name\":\"%s %s\",\"kana\":\"ヤマダ "
		    "ハナコ\",\"birth\":\"19%02d-%02d-%02d\","
		    "\"sex\":%d,\"address\":\"東京都千代田区本町%zu丁目%zu番\"}}",
		    i ? "," : "", code, surnames[rand_r(&seed) % 7], given[rand_r(&seed) % 8],
		    30 + rand_r(&seed) % 70, 1 + rand_r(&seed) % 12, 1 + rand_r(&seed) % 28,
		    1 + rand_r(&seed) % 2, 1 + i % 9, 1 + i % 30);
	}
	off += (size_t)snprintf(buf + off, cap - off, "]}}");
	*len = off;
	return buf;
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 5000;
	int rounds = argc > 2 ? atoi(argv[2]) : 20;
	double copy = 0, parse = 0, validate = 0, dumps = 0, text = 0, freeing = 0, split = 0,
	       inplace = 0;
	size_t len;
	char *frame = make_frame(n, &len), *copied = malloc(len);
	const char **starts = calloc(n ? n : 1, sizeof(*starts));
	size_t *lens = calloc(n ? n : 1, sizeof(*lens));

	if (n == 0 || rounds <= 0 || frame == NULL || copied == NULL || starts == NULL ||
	    lens == NULL) {
		fprintf(stderr, "usage: bench_records [RECORDS [ROUNDS]]\n");
		return 2;
	}
	for (int r = 0; r < rounds; r++) {
		double t0 = now_s(), t1;
		json_t *doc, *records, *rec;
		size_t i;

		memcpy(copied, frame, len);
		t1 = now_s();
		copy += t1 - t0;
		doc = json_loadb(copied, len, JSON_REJECT_DUPLICATES, NULL);
		t0 = now_s();
		parse += t0 - t1;
		records = json_object_get(json_object_get(doc, "body"), "records");
		if (json_array_size(records) != n) {
			fprintf(stderr, "bench_records: the frame does not parse\n");
			return 1;
		}
		json_array_foreach(records, i, rec)
		{
			struct juki_field_error fe;
			struct juki_change c;
			size_t tlen;
			char *a, *b;
			double ta = now_s(), tb, tc;

			if (juki_change_from_json(rec, &c, &fe) != 0) {
				fprintf(stderr, "bench_records: record %zu refused: %s: %s\n", i,
					fe.field, fe.detail);
				return 1;
			}
			tb = now_s();
			a = json_dumps(rec, JSON_COMPACT);
			tc = now_s();
			b = juki_change_text(&c, &tlen);
			validate += tb - ta;
			dumps += tc - tb;
			text += now_s() - tc;
			if (a == NULL || b == NULL || strcmp(a, b) != 0) {
				fprintf(stderr,
					"bench_records: the two texts of record %zu differ\n", i);
				return 1;
			}
			free(a);
			free(b);
		}
		t0 = now_s();
		json_decref(doc);
		freeing += now_s() - t0;

		/* The text's way. */
		{
			size_t off, blen;
			double ts = now_s(), tr;

			if (juki_frame_split(copied, len, want_batch, NULL, &doc, &off, &blen) !=
				1 ||
			    cut_records(copied + off, n, starts, lens) != 0) {
				fprintf(stderr, "bench_records: the frame does not split\n");
				return 1;
			}
			tr = now_s();
			split += tr - ts;
			json_decref(doc);
			for (i = 0; i < n; i++) {
				struct juki_change c;

				if (juki_change_from_text(starts[i], lens[i], &c) != 0) {
					fprintf(stderr, "bench_records: record %zu not read\n", i);
					return 1;
				}
			}
			inplace += now_s() - tr;
		}
	}
	{
		double per = 1e6 / ((double)n * rounds);

		printf("records: %zu per frame (%zu bytes), %d rounds\n", n, len, rounds);
		printf("baseline: memcpy of the frame %.3f us/record\n", copy * per);
		printf("parse (json_loadb) %.2f us/record (%.0fx baseline)\n", parse * per,
		       parse / copy);
		printf("validate (juki_change_from_json) %.2f us/record\n", validate * per);
		printf("text by json_dumps %.2f us/record, by juki_change_text %.2f us/record\n",
		       dumps * per, text * per);
		printf("free the tree %.2f us/record\n", freeing * per);
		printf("the tree's way: %.2f us/record\n",
		       (parse + validate + text + freeing) * per);
		printf("split (juki_frame_split: the body vouched for, the header by jansson) "
		       "%.2f us/record\n",
		       split * per);
		printf("read in place (juki_change_from_text) %.2f us/record\n", inplace * per);
		printf("the text's way: %.2f us/record\n", (split + inplace) * per);
	}
	free(frame);
	free(copied);
	free(starts);
	free(lens);
	return 0;
}
