#include "authlinkd.h"

int
main(int argc, char **argv)
{
	return juki_daemon_main(argc, argv, &authlinkd_ops);
}
