#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/*
 * Person options shared by "resident add" and "movein": they build the
 * person object the daemon validates (the daemon is the judge of validity;
 * juki-ctl only checks that the options are there).
 */
static const struct option person_opts[] = {
    {"code", required_argument, NULL, 'c'}, {"name", required_argument, NULL, 'n'},
    {"kana", required_argument, NULL, 'k'}, {"birth", required_argument, NULL, 'b'},
    {"sex", required_argument, NULL, 'x'},  {"address", required_argument, NULL, 'a'},
    {"file", required_argument, NULL, 'f'}, {"from", required_argument, NULL, 'F'},
    {"date", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0},
};

/* Parse person options; *file, *from, *date are set when given.  Returns the object or NULL. */
json_t *ctl_person_args(int argc, char **argv, const char **file, const char **from,
			const char **date, int *bad);

json_t *
ctl_person_args(int argc, char **argv, const char **file, const char **from, const char **date,
		int *bad)
{
	json_t *person = json_object();
	int ch;

	*bad = 0;
	while ((ch = getopt_long(argc, argv, "", person_opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			json_object_set_new(person, "code", json_string(optarg));
			break;
		case 'n':
			json_object_set_new(person, "name", json_string(optarg));
			break;
		case 'k':
			json_object_set_new(person, "kana", json_string(optarg));
			break;
		case 'b':
			json_object_set_new(person, "birth", json_string(optarg));
			break;
		case 'x':
			if (strcmp(optarg, "1") != 0 && strcmp(optarg, "2") != 0) {
				fprintf(stderr, "juki-ctl: --sex: 1 (male) or 2 (female)\n");
				*bad = 1;
				break;
			}
			json_object_set_new(person, "sex", json_integer(optarg[0] - '0'));
			break;
		case 'a':
			json_object_set_new(person, "address", json_string(optarg));
			break;
		case 'f':
			*file = optarg;
			break;
		case 'F':
			if (from == NULL) {
				*bad = 1;
				break;
			}
			*from = optarg;
			break;
		case 'd':
			if (date == NULL) {
				*bad = 1;
				break;
			}
			*date = optarg;
			break;
		default:
			*bad = 1;
		}
	}
	if (optind != argc) {
		*bad = 1;
	}
	return person;
}

static int
show_result(struct ctl *ctl, const char *cmd, json_t *args)
{
	json_t *result = NULL;
	int rc = ctl_call(ctl, cmd, args, &result);

	if (rc == CTL_OK) {
		ctl_print(ctl, result);
	}
	json_decref(result);
	return rc;
}

static int
cmd_resident_add(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *self = ctl_find("resident add");
	const char *file = NULL;
	json_t *person, *list;
	int bad;

	person = ctl_person_args(argc, argv, &file, NULL, NULL, &bad);
	if (bad || (file != NULL) == (json_object_size(person) > 0)) {
		json_decref(person);
		return ctl_usage(self);
	}
	if (file != NULL) {
		json_decref(person);
		list = ctl_read_jsonl(file);
		if (list == NULL) {
			return CTL_FAILED;
		}
	} else {
		list = json_pack("[o]", person);
	}
	return show_result(ctl, "resident.add", json_pack("{s:o}", "residents", list));
}

static int
cmd_resident_show(struct ctl *ctl, int argc, char **argv)
{
	if (argc != 2) {
		return ctl_usage(ctl_find("resident show"));
	}
	return show_result(ctl, "resident.show", json_pack("{s:s}", "code", argv[1]));
}

/* resident correct CODE [--name N] [--kana K] [--birth D] [--sex S] [--address A] [--date D]
 * [--approval N] */
static int
cmd_resident_correct(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},     {"kana", required_argument, NULL, 'k'},
	    {"birth", required_argument, NULL, 'b'},    {"sex", required_argument, NULL, 'x'},
	    {"address", required_argument, NULL, 'a'},  {"date", required_argument, NULL, 'd'},
	    {"approval", required_argument, NULL, 'A'}, {NULL, 0, NULL, 0},
	};
	static const char *const keys[] = {
	    ['n'] = "name", ['k'] = "kana", ['b'] = "birth", ['a'] = "address"};
	const struct ctl_cmd *self = ctl_find("resident correct");
	json_t *person = json_object(), *args = json_object();
	char *end;
	int ch;

	json_object_set_new(args, "person", person);
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
		case 'k':
		case 'b':
		case 'a':
			json_object_set_new(person, keys[ch], json_string(optarg));
			break;
		case 'x':
			if (strcmp(optarg, "1") != 0 && strcmp(optarg, "2") != 0) {
				fprintf(stderr, "juki-ctl: --sex: 1 (male) or 2 (female)\n");
				json_decref(args);
				return CTL_USAGE;
			}
			json_object_set_new(person, "sex", json_integer(optarg[0] - '0'));
			break;
		case 'd':
			json_object_set_new(args, "date", json_string(optarg));
			break;
		case 'A':
			json_object_set_new(args, "approval",
					    json_integer(strtoll(optarg, &end, 10)));
			if (*end != '\0') {
				json_decref(args);
				return ctl_usage(self);
			}
			break;
		default:
			json_decref(args);
			return ctl_usage(self);
		}
	}
	if (optind + 1 != argc || json_object_size(person) == 0) {
		json_decref(args);
		return ctl_usage(self);
	}
	json_object_set_new(args, "code", json_string(argv[optind]));
	return show_result(ctl, "resident.correct", args);
}

const struct ctl_cmd ctl_resident_cmds[] = {
    {"resident add", cmd_resident_add,
     "--code C --name N [--kana K] --birth YYYY-MM-DD --sex 1|2 --address A | "
     "--file FILE.jsonl",
     "register residents at a CS (one, or a JSON Lines file of person objects); all or "
     "nothing",
     1},
    {"resident show", cmd_resident_show, "CODE",
     "a resident's record at a CS, with its move-in and move-out cases", 1},
    {"resident correct", cmd_resident_correct,
     "CODE [--name N] [--kana K] [--birth D] [--sex 1|2] [--address A] [--date D] "
     "[--approval N]",
     "職権修正 of a resident's recorded items: with a supervisor's approval given beforehand, "
     "or pending one to be given within operator.approve_within",
     1},
    {NULL, NULL, NULL, NULL, 0},
};
