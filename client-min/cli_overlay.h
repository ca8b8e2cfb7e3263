/*
 * cli_overlay.h: chorus-client's overlay mode, `chorus-client overlay ...`.
 *
 * Runs one overlay node (ovl_node.h) on the libuv driver (ovl_uvnode.h):
 * as an ordinary peer it logs in to a supernode with a handle; as a
 * supernode it serves the DHT (a seed without --bootstrap). It reports its
 * NAT type, looks up handles and rooms, follows buddies' presence and takes
 * the same requests one per line on stdin. Every report is one line on
 * stdout, human or JSON (--json), flushed at once so that a test harness
 * can follow the process line by line. `chorus-client overlay --help`
 * lists the options and the JSON events.
 *
 * Thread: the caller's; runs its own libuv loop to the end.
 */
#ifndef CLI_OVERLAY_H
#define CLI_OVERLAY_H

/* Exit status of the overlay mode. */
enum cli_overlay_exit {
    CLI_OVL_EXIT_OK = 0,
    CLI_OVL_EXIT_USAGE = 2,   /* bad options, unreadable key or certificate */
    CLI_OVL_EXIT_LOGIN = 3,   /* not logged in within --login-timeout */
    CLI_OVL_EXIT_LOOKUP = 4,  /* a one-shot lookup answered "failed" */
};

/*
 * The whole overlay mode. @argv[0] is "overlay" (the word after the program
 * name); options follow. Returns an enum cli_overlay_exit value.
 */
int cli_overlay_main(int argc, char **argv);

#endif /* CLI_OVERLAY_H */
