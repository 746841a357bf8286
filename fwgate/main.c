#include "gateway.h"

int
main(int argc, char **argv)
{
	return juki_daemon_main(argc, argv, &fwgate_ops);
}
