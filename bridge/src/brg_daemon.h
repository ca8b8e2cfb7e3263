/*
 * brg_daemon.h: the bridge daemon's entry point, called by main().
 */
#ifndef BRG_DAEMON_H
#define BRG_DAEMON_H

#include "brg_config.h"

/* Runs the bridge with @cfg until SIGINT/SIGTERM. Returns the process exit
 * status (0 after a clean shutdown). Thread: the calling thread becomes the
 * loop thread. */
int brg_run(struct brg_config *cfg);

#endif /* BRG_DAEMON_H */
