#include "jlisd.h"

int
main(int argc, char **argv)
{
	return juki_daemon_main(argc, argv, &jlisd_ops);
}
