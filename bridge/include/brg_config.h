/*
 * brg_config.h: the bridge's configuration, described by one table.
 *
 * Every option is one row of the table options[] in brg_config.c: its
 * name, type, default, bounds and help line. From that table come the defaults, the
 * config file reader, the environment (CHORUS_<NAME>), the command-line
 * flags (--name value, --name=value; booleans also --name, --no-name,
 * --name=false and --name followed by a boolean word such as "false"),
 * the --help text and the validation messages.
 *
 * Precedence: built-in default < config file < environment < flags. The
 * file is --config / CHORUS_CONFIG (no file when unset).
 *
 * File format: one `key = value` per line; '#' starts a comment (at the
 * start of a line or after blanks); blank lines are ignored; values may be
 * wrapped in double quotes to keep leading/trailing blanks or a '#'. Keys
 * are option names (media_port; media-port is accepted too). An unknown key
 * is an error naming the file and line.
 *
 * Error messages name where the bad value came from:
 *     --media-port: 70000 is not a port (1-65535)
 *     CHORUS_MEDIA_PORT: 70000 is not a port (1-65535)
 *     /etc/chorus.conf:12: media_port: 70000 is not a port (1-65535)
 *     /etc/chorus.conf:3: unknown option 'media_prot'
 *
 * Adding an option (e.g. for the overlay): add a field to struct
 * brg_config below and one row to options[] in brg_config.c. Nothing
 * else: the file/env/flag readers, --help and the tests walk the table.
 *
 * Thread: brg_config_load uses getopt_long (global state): call it once at
 * startup from the main thread. A loaded struct brg_config is read-only
 * afterwards and may then be read from any thread.
 *
 * Usage:
 *
 *     struct brg_config cfg;
 *     char err[256];
 *     int rc = brg_config_load(&cfg, argc, argv, NULL, err, sizeof err);
 *     if (rc == BRG_CONFIG_HELP) { brg_config_help(stdout, argv[0]); exit(0); }
 *     if (rc == BRG_CONFIG_VERSION) { puts(brg_config_version()); exit(0); }
 *     if (rc < 0) { fprintf(stderr, "chorus-bridge: %s\n", err); exit(2); }
 *
 *     char *token = NULL;
 *     if (!cfg.api_token || !cfg.api_token[0])
 *         rc = brg_config_load_or_create_token(cfg.state_dir, &token);
 *     ...
 *     free(token);
 *     brg_config_free(&cfg);
 */
#ifndef BRG_CONFIG_H
#define BRG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Value types of options. What the field in struct brg_config is: */
enum brg_opt_type {
    BRG_OPT_INT = 1,    /* int, within [min, max] */
    BRG_OPT_BOOL,       /* bool: true/false, yes/no, on/off, 1/0 */
    BRG_OPT_STRING,     /* char * (malloc'd, may be ""), optional check() */
    BRG_OPT_PORT,       /* int, 1..65535 */
    BRG_OPT_ADDR,       /* char *, an IPv4 or IPv6 literal */
    BRG_OPT_SIZE,       /* uint64_t bytes; suffix k, M, G (powers of 1024) */
    BRG_OPT_CHOICE,     /* int: index into choices "a|b|c" */
};

enum {
    BRG_OPT_SECRET = 1u << 0,   /* never show the value (api_token) */
    BRG_CONFIG_HELP = 1,        /* brg_config_load: --help was given */
    BRG_CONFIG_VERSION = 2,     /* brg_config_load: --version was given */
    BRG_API_TOKEN_BYTES = 32,   /* random bytes of a generated token */
    BRG_API_TOKEN_MIN = 16,     /* shortest token accepted from the user */
};

/* Values of the role option (choice order in the table). */
enum brg_role {
    BRG_ROLE_AUTO = 0,
    BRG_ROLE_SUPERNODE = 1,
    BRG_ROLE_PEER = 2,
};

/* The configuration. Strings are malloc'd and owned by the struct
 * (brg_config_free frees them); a string option is never NULL after
 * brg_config_init/load, possibly "". */
struct brg_config {
    char *config;        /* config file path, "" when none */
    char *state_dir;     /* directory for chorus.db, api-token */
    char *media_addr;    /* address the media UDP/TCP ports bind to */
    int media_port;      /* UDP and TCP media port */
    char *api_addr;      /* REST API bind address */
    int api_port;        /* REST API port */
    char *api_token;     /* bearer token; "" means use the generated one */
    int rtp_port_min;    /* first port for plain RTP legs */
    int rtp_port_max;    /* last port for plain RTP legs */
    int workers;         /* mixing threads */
    bool realtime;       /* ask SCHED_FIFO for mixing threads */
    char *log_level;     /* default level: error|warn|info|debug|trace|off */
    char *log;           /* topic levels, "bridge.udp=debug,mix=warn" */
    char *demo_room;     /* room created at startup if missing; "" none */
    int max_legs;        /* media legs accepted at most */
    bool overlay;        /* join the peer-to-peer overlay */
    int overlay_port;    /* overlay UDP and TCP port; 0: ephemeral */
    bool overlay_tcp443; /* also accept overlay TCP on port 443 */
    int role;            /* enum brg_role */
    char *bootstrap;     /* supernodes "KEY@HOST:PORT,...", "" none (with
                            role auto: this bridge is a seed) */
    int keepalive_s;     /* overlay session keep-alive interval, seconds */
    char *login_authority; /* authority's Ed25519 public key text, "" none */
    char *advertise_ip;  /* IP others reach us at, "" the driver's choice */
};

/* One row of the option table. */
struct brg_option {
    const char *name;      /* "media_port": file key; flag --media-port;
                              env CHORUS_MEDIA_PORT */
    enum brg_opt_type type;
    size_t offset;         /* offsetof(struct brg_config, field) */
    const char *def;       /* default, as text (parsed like any value) */
    long long min, max;    /* INT and SIZE bounds */
    const char *choices;   /* CHOICE: "auto|supernode|peer" */
    /* Extra validation of a string value (may be NULL). Returns 0, or
     * -EINVAL with a reason after the value, e.g. "is not a room name". */
    int (*check)(const char *value, char *why, size_t whylen);
    const char *metavar;   /* placeholder in --help, e.g. "PATH" */
    unsigned flags;        /* BRG_OPT_SECRET */
    const char *help;      /* one line */
};

/* Returns the option table and stores its length in *@count. */
const struct brg_option *brg_config_options(size_t *count);

/* Returns the row named @name ("media_port" or "media-port"), or NULL. */
const struct brg_option *brg_config_find(const char *name);

/* Fills @cfg with the defaults of the table. Returns 0 or -ENOMEM (then
 * @cfg holds nothing to free). */
int brg_config_init(struct brg_config *cfg);

/* Frees the strings of @cfg and zeroes it. Safe on a zeroed struct. */
void brg_config_free(struct brg_config *cfg);

/* The whole startup sequence: defaults, then the config file, then the
 * environment @envp (NULL means the process environment; only CHORUS_*
 * entries are looked at), then the flags in @argv, then brg_config_validate.
 * @cfg need not be initialised. Returns 0, BRG_CONFIG_HELP or
 * BRG_CONFIG_VERSION (cfg is initialised: free it), or a negative errno
 * with a one-line message in @err (then @cfg holds nothing to free):
 * -EINVAL for bad values, unknown options or arguments, -ENOENT/-EACCES
 * when the config file cannot be read, -ENOMEM. */
int brg_config_load(struct brg_config *cfg, int argc, char **argv,
                    char *const *envp, char *err, size_t errlen);

/* Reads the config file @path into @cfg (initialised). Returns 0, or a
 * negative errno with "path:line: ..." in @err. */
int brg_config_read_file(struct brg_config *cfg, const char *path,
                         char *err, size_t errlen);

/* Sets option @name to the text @value after checking it. @origin names
 * where the value came from, for the message (e.g. "--media-port" or
 * "chorus.conf:4: media_port"); NULL means the option name. Returns 0,
 * -ENOENT for an unknown option, -EINVAL with a message, or -ENOMEM. */
int brg_config_set(struct brg_config *cfg, const char *name,
                   const char *value, const char *origin,
                   char *err, size_t errlen);

/* Checks rules that involve several options (rtp_port_min <= rtp_port_max,
 * the media port outside the RTP range, API and media ports distinct, the
 * overlay port distinct from the media, API and RTP ports).
 * Returns 0 or -EINVAL with a message. */
int brg_config_validate(const struct brg_config *cfg, char *err,
                        size_t errlen);

/* Writes the --help text for program @argv0 to @out: usage, then one
 * entry per table row with its flag, env variable, default and help.
 * Returns 0 or -EIO. */
int brg_config_help(FILE *out, const char *argv0);

/* Returns "chorus-bridge <version>". */
const char *brg_config_version(void);

/* Parses one "host:port" (or "[v6addr]:port") of
 * @len bytes at @s. Writes the host (without brackets, NUL-terminated)
 * into @host of @hostcap bytes and the port to *@port. Returns 0 or
 * -EINVAL. */
int brg_config_parse_hostport(const char *s, size_t len, char *host,
                              size_t hostcap, uint16_t *port);

/* Creates directory @dir (and missing parents) with mode 0700. An existing
 * directory is fine. Returns 0 or a negative errno. */
int brg_config_make_state_dir(const char *dir);

/* Returns the API token kept in <@state_dir>/api-token, creating it on the
 * first call: 32 random bytes (libsodium) as base64url without padding
 * (43 characters), written atomically (temporary file, fsync, link) with
 * mode 0600, so two processes starting together agree on one token. A
 * token file with looser permissions is chmod'ed to 0600. Creates
 * @state_dir if missing. On success *@token is malloc'd (free it).
 * Returns 0, -EBADMSG when the existing file does not hold a valid token,
 * or a negative errno from the file system. */
int brg_config_load_or_create_token(const char *state_dir, char **token);

#endif /* BRG_CONFIG_H */
