/*
 * brg_main.c: chorus-bridge's main(): configuration (embedded defaults <
 * file < CHORUS_* environment < flags), logging, then the daemon.
 */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "brg_config.h"
#include "brg_daemon.h"
#include "brg_log.h"

extern char **environ;

int main(int argc, char **argv)
{
    struct brg_config cfg;
    char err[512];
    int rc;

    rc = brg_config_load(&cfg, argc, argv, environ, err, sizeof(err));
    if (rc == BRG_CONFIG_HELP) {
        brg_config_help(stdout, argv[0]);
        brg_config_free(&cfg);
        return 0;
    }
    if (rc == BRG_CONFIG_VERSION) {
        puts(brg_config_version());
        brg_config_free(&cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "chorus-bridge: %s\n", err);
        fprintf(stderr, "Try 'chorus-bridge --help'.\n");
        return 2;
    }
    if (brg_log_configure(cfg.log_level, cfg.log, err, sizeof(err)) != 0) {
        fprintf(stderr, "chorus-bridge: %s\n", err);
        brg_config_free(&cfg);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "chorus-bridge: libsodium failed to initialise\n");
        brg_config_free(&cfg);
        return 1;
    }
    /* A peer that closes a TCP connection must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    rc = brg_run(&cfg);
    brg_config_free(&cfg);
    return rc;
}
