/*
 * Fuzz target: juki-ctl's command line (ctl_parse_argv()).  The input is
 * argv after the program's name, the words separated by NUL bytes.  Only
 * the parser runs, never a command.  Whatever the words, the parser
 * either refuses the line or hands back an entry of the command table
 * with every required option and argument given, each value pointing into
 * argv, and a request object.
 */
#include "ctl.h"
#include "fuzz.h"

#define WORDS_MAX 48

static int
in_argv(const char *p, char **argv, int argc)
{
	for (int i = 0; i < argc; i++) {
		if (p >= argv[i] && p <= argv[i] + strlen(argv[i])) {
			return 1;
		}
	}
	return 0;
}

static void
check(const struct ctl_req *req, char **argv, int argc, int global)
{
	FUZZ_ASSERT(json_is_object(req->args));
	for (size_t i = 0; i < CTL_OPTS_MAX && req->cmd->opts[i].name != NULL; i++) {
		const struct ctl_opt *o = &req->cmd->opts[i];

		if (req->val[i] != NULL) {
			FUZZ_ASSERT(in_argv(req->val[i], argv, argc));
			FUZZ_ASSERT(o->type != CTL_CARD || !ctl_card_uri_has_pin(req->val[i]));
		} else if (!global) {
			FUZZ_ASSERT(!(o->flags & CTL_REQUIRED));
			FUZZ_ASSERT(!(o->flags & CTL_ARG) || (o->flags & CTL_OPTIONAL));
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *argv[WORDS_MAX + 2] = {"juki-ctl"};
	const struct ctl_cmd *cmd;
	struct ctl_req g, req;
	size_t at = 0;
	int argc = 1;

	FUZZ_ASSERT(text != NULL);
	if (size > 0) {
		memcpy(text, data, size);
	}
	text[size] = '\0';
	while (at <= size && argc <= WORDS_MAX) {
		argv[argc++] = text + at;
		at += strlen(text + at) + 1;
	}
	argv[argc] = NULL;
	if (ctl_parse_argv(argc, argv, &g, &cmd, &req) == CTL_OK) {
		check(&g, argv, argc, 1);
		if (cmd != NULL) {
			FUZZ_ASSERT(req.cmd == cmd && ctl_find(cmd->name) == cmd);
			check(&req, argv, argc, 0);
			ctl_req_free(&req);
		}
		ctl_req_free(&g);
	}
	free(text);
	return 0;
}
