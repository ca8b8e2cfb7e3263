/*
 * cli_ovl_report.h: what chorus-client's overlay mode prints. One line on
 * stdout per event, flushed at once: a human sentence, or with --json one
 * JSON object whose "event" key names the kind (the keys are listed in
 * `chorus-client overlay --help`; a multi-process test parses them, so
 * keys are only ever added, never renamed).
 *
 * Thread: the loop's (stdout is written from nowhere else).
 */
#ifndef CLI_OVL_REPORT_H
#define CLI_OVL_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ovl_uvnode.h"

struct cli_ovl_report {
    bool json;        /* public: JSON lines instead of sentences */
    FILE *out;        /* public: where lines go (stdout) */
    bool ready_done;  /* private: "ready" was printed */
};

/* @out NULL: stdout. */
void cli_ovl_report_init(struct cli_ovl_report *r, bool json, FILE *out);

/* "ready": the sockets are bound; our contact and ports. Printed once,
 * later calls do nothing. */
void cli_ovl_report_ready(struct cli_ovl_report *r, struct ovl_uvnode *u);

/* "logged_in" (again after every re-attach), with our @role now. */
void cli_ovl_report_logged_in(struct cli_ovl_report *r, const struct ovl_event *ev,
                              enum ovl_role role, const uint8_t node_id[OVL_NODE_ID_LEN]);
void cli_ovl_report_login_failed(struct cli_ovl_report *r, const char *reason);
void cli_ovl_report_lost(struct cli_ovl_report *r, const struct ovl_contact *supernode);
void cli_ovl_report_role(struct cli_ovl_report *r, enum ovl_role role);

/* "lookup": the answer to a lookup; @now (the node's clock) times it. */
void cli_ovl_report_lookup(struct cli_ovl_report *r, const struct ovl_event *ev, uint64_t now);
/* "buddy": a buddy's state (first resolution, then every change). */
void cli_ovl_report_buddy(struct cli_ovl_report *r, const struct ovl_event *ev);
void cli_ovl_report_published(struct cli_ovl_report *r, const struct ovl_event *ev);
void cli_ovl_report_nat(struct cli_ovl_report *r, const struct ovl_nat_result *nat);
void cli_ovl_report_status(struct cli_ovl_report *r, struct ovl_uvnode *u);

/* An event without data: {"event":@event}, or the sentence @human. */
void cli_ovl_report_simple(struct cli_ovl_report *r, const char *event, const char *human);

/* Room for ovl_addr_to_text's "1.2.3.4:5", "[2001:db8::1]:5" or "none". */
enum { CLI_OVL_ADDR_TEXT_MAX = 64 };
/* Helpers, exposed for the unit test. */
/* "2026-11-26 10:00:00 UTC". */
void cli_ovl_time_text(char *out, size_t cap, uint64_t unix_s);
/* "online", "offline", "unknown", "failed". */
const char *cli_ovl_state_name(enum ovl_presence_state s);

#endif /* CLI_OVL_REPORT_H */
