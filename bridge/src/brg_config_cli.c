/*
 * brg_config_cli.c: the startup half of the configuration (brg_config.h):
 * environment variables, command-line flags (getopt_long over a struct
 * option array generated from the table), the precedence order of
 * brg_config_load, the cross-option checks and the --help text.
 */
#include "brg_config.h"
#include "brg_config_int.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------- env and flags -- */

/* Returns the value of @name in @envp, or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* Applies every CHORUS_<NAME> of @envp, except "config" (read earlier). */
static int apply_env(struct brg_config *cfg, char *const *envp,
                     char *err, size_t errlen)
{
    size_t n;
    const struct brg_option *t = brg_config_options(&n);
    char env[ENV_MAX];

    for (size_t i = 0; i < n; i++) {
        const char *v;
        int rc;

        brg__config_env_name(&t[i], env);
        v = env_get(envp, env);
        if (!v || strcmp(t[i].name, "config") == 0)
            continue;
        rc = brg_config_set(cfg, t[i].name, v, env, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A flag seen on the command line, kept until the env has been applied. */
struct flag_arg {
    const struct brg_option *opt;
    const char *value;
};

/* getopt_long's view of the table, built once per load: --name (bools
 * with an optional value) and --no-name for bools, plus --help and
 * --version. @names holds the flag texts the entries point into. */
struct long_opts {
    struct option *lo;          /* 2 n + 3 entries */
    char (*names)[FLAG_MAX + 4]; /* 2 n entries ("no-" + name) */
};

/* Builds @l from the table. Returns 0 or -ENOMEM. */
static int long_opts_init(struct long_opts *l)
{
    size_t n, k = 0;
    const struct brg_option *t = brg_config_options(&n);

    l->lo = calloc(2 * n + 3, sizeof(*l->lo));
    l->names = calloc(2 * n, sizeof(*l->names));
    if (!l->lo || !l->names) {
        free(l->lo);
        free(l->names);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        char flag[FLAG_MAX];

        brg__config_flag_name(&t[i], flag);
        memcpy(l->names[2 * i], flag, FLAG_MAX);
        l->lo[k++] = (struct option){ l->names[2 * i] + 2,
            t[i].type == BRG_OPT_BOOL ? optional_argument : required_argument,
            NULL, FLAG_BASE + 2 * (int)i };
        if (t[i].type == BRG_OPT_BOOL) {
            snprintf(l->names[2 * i + 1], sizeof(l->names[0]), "no-%s",
                     flag + 2);
            l->lo[k++] = (struct option){ l->names[2 * i + 1], no_argument,
                                          NULL, FLAG_BASE + 2 * (int)i + 1 };
        }
    }
    l->lo[k++] = (struct option){ "help", no_argument, NULL, 'h' };
    l->lo[k++] = (struct option){ "version", no_argument, NULL, 'V' };
    l->lo[k] = (struct option){ NULL, 0, NULL, 0 };
    return 0;
}

/* Records flag @c (a FLAG_BASE value) with getopt's optarg into @out.
 * "--realtime false": a boolean word after a bare bool flag is its value
 * (with '+' getopt does not permute, so moving optind on is safe). */
static void take_flag(int c, int argc, char **argv, struct flag_arg *out)
{
    size_t n;
    const struct brg_option *o = &brg_config_options(&n)[(c - FLAG_BASE) / 2];
    bool neg = (c - FLAG_BASE) % 2, b;

    out->opt = o;
    out->value = neg ? "false" : (optarg ? optarg : "true");
    if (!neg && !optarg && o->type == BRG_OPT_BOOL && optind < argc &&
        brg__config_parse_bool(argv[optind], &b))
        out->value = argv[optind++];
}

/* Runs getopt_long over @argv with @lo, storing the flags in @out (argc
 * entries) and *@nout. Returns 0, BRG_CONFIG_HELP/VERSION, or -EINVAL. */
static int scan_loop(int argc, char **argv, const struct option *lo,
                     struct flag_arg *out, size_t *nout,
                     char *err, size_t errlen)
{
    int c, special = 0;

    optind = 0;     /* GNU: full re-initialisation */
    opterr = 0;
    *nout = 0;
    while ((c = getopt_long(argc, argv, "+:hV", lo, NULL)) != -1) {
        if (c == 'h' || c == 'V') {
            if (!special)
                special = c == 'h' ? BRG_CONFIG_HELP : BRG_CONFIG_VERSION;
        } else if (c >= FLAG_BASE) {
            take_flag(c, argc, argv, &out[(*nout)++]);
        } else if (c == ':') {
            snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
            return -EINVAL;
        } else {
            snprintf(err, errlen, "unknown option '%s' (try --help)",
                     argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (special)
        return special;
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (try --help)",
                 argv[optind]);
        return -EINVAL;
    }
    return 0;
}

/* Scans the flags of @argv into @out/@nout; see scan_loop. */
static int scan_flags(int argc, char **argv, struct flag_arg *out,
                      size_t *nout, char *err, size_t errlen)
{
    struct long_opts l;
    int rc = long_opts_init(&l);

    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    rc = scan_loop(argc, argv, l.lo, out, nout, err, errlen);
    free(l.lo);
    free(l.names);
    return rc;
}

/* Applies the flags collected by scan_flags (config excluded). */
static int apply_flags(struct brg_config *cfg, const struct flag_arg *f,
                       size_t n, char *err, size_t errlen)
{
    char flag[FLAG_MAX];

    for (size_t i = 0; i < n; i++) {
        int rc;

        if (strcmp(f[i].opt->name, "config") == 0)
            continue;
        brg__config_flag_name(f[i].opt, flag);
        rc = brg_config_set(cfg, f[i].opt->name, f[i].value, flag, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Finds the config file path: the last --config flag, else CHORUS_CONFIG,
 * and stores it in cfg->config. */
static int apply_config_path(struct brg_config *cfg, const struct flag_arg *f,
                             size_t n, char *const *envp,
                             char *err, size_t errlen)
{
    const char *path = env_get(envp, "CHORUS_CONFIG");
    const char *origin = "CHORUS_CONFIG";

    for (size_t i = 0; i < n; i++) {
        if (strcmp(f[i].opt->name, "config") == 0) {
            path = f[i].value;
            origin = "--config";
        }
    }
    if (!path)
        return 0;
    return brg_config_set(cfg, "config", path, origin, err, errlen);
}

/* Loads the configuration; see brg_config.h. */
int brg_config_load(struct brg_config *cfg, int argc, char **argv,
                    char *const *envp, char *err, size_t errlen)
{
    struct flag_arg *flags;
    size_t nflags = 0;
    int rc;

    if (!envp)
        envp = environ;
    err[0] = '\0';
    rc = brg_config_init(cfg);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    flags = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*flags));
    if (!flags) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out_free_cfg;
    }
    rc = scan_flags(argc, argv, flags, &nflags, err, errlen);
    if (rc != 0)
        goto out_free_flags;
    rc = apply_config_path(cfg, flags, nflags, envp, err, errlen);
    if (rc == 0 && cfg->config[0])
        rc = brg_config_read_file(cfg, cfg->config, err, errlen);
    if (rc == 0)
        rc = apply_env(cfg, envp, err, errlen);
    if (rc == 0)
        rc = apply_flags(cfg, flags, nflags, err, errlen);
    if (rc == 0)
        rc = brg_config_validate(cfg, err, errlen);

out_free_flags:
    free(flags);
    if (rc >= 0)
        return rc;  /* 0, HELP or VERSION: cfg stays initialised */
out_free_cfg:
    brg_config_free(cfg);
    return rc;
}

/* ------------------------------------------------ cross-field checks -- */

/* True when binding @a and @b could collide (same or wildcard address). */
static bool addr_overlap(const char *a, const char *b)
{
    return strcmp(a, b) == 0 || strcmp(a, "0.0.0.0") == 0 ||
           strcmp(b, "0.0.0.0") == 0 || strcmp(a, "::") == 0 ||
           strcmp(b, "::") == 0;
}

/* The overlay's port (UDP and TCP, bound on media_addr) must not be one
 * the bridge already uses. Port 0 (ephemeral) never collides. */
static int validate_overlay(const struct brg_config *cfg, char *err,
                            size_t errlen)
{
    int p = cfg->overlay_port;

    if (!cfg->overlay || p == 0)
        return 0;
    if (p == cfg->media_port) {
        snprintf(err, errlen, "--overlay-port: %d is also the media port", p);
        return -EINVAL;
    }
    if (p >= cfg->rtp_port_min && p <= cfg->rtp_port_max) {
        snprintf(err, errlen, "--overlay-port: %d is inside the RTP port "
                 "range (%d-%d)", p, cfg->rtp_port_min, cfg->rtp_port_max);
        return -EINVAL;
    }
    if (p == cfg->api_port && addr_overlap(cfg->api_addr, cfg->media_addr)) {
        snprintf(err, errlen, "--overlay-port: %d is also the API port (TCP)",
                 p);
        return -EINVAL;
    }
    return 0;
}

/* Checks multi-option rules; see brg_config.h. */
int brg_config_validate(const struct brg_config *cfg, char *err, size_t errlen)
{
    if (cfg->rtp_port_min > cfg->rtp_port_max) {
        snprintf(err, errlen, "--rtp-port-min: %d is above --rtp-port-max (%d)",
                 cfg->rtp_port_min, cfg->rtp_port_max);
        return -EINVAL;
    }
    if (cfg->media_port >= cfg->rtp_port_min &&
        cfg->media_port <= cfg->rtp_port_max) {
        snprintf(err, errlen, "--media-port: %d is inside the RTP port range "
                 "(%d-%d)", cfg->media_port, cfg->rtp_port_min,
                 cfg->rtp_port_max);
        return -EINVAL;
    }
    if (cfg->api_port == cfg->media_port &&
        addr_overlap(cfg->api_addr, cfg->media_addr)) {
        snprintf(err, errlen, "--api-port: %d is also the media port (TCP)",
                 cfg->api_port);
        return -EINVAL;
    }
    return validate_overlay(cfg, err, errlen);
}

/* ------------------------------------------------------------- help -- */

/* Writes the default of @o for --help. */
static void help_default(FILE *out, const struct brg_option *o)
{
    if (o->flags & BRG_OPT_SECRET)
        fprintf(out, "none");
    else if (o->def[0] == '\0')
        fprintf(out, "''");
    else
        fprintf(out, "%s", o->def);
}

/* Writes the help text; see brg_config.h. */
int brg_config_help(FILE *out, const char *argv0)
{
    size_t n;
    const struct brg_option *t = brg_config_options(&n);
    char flag[FLAG_MAX], env[ENV_MAX], left[128];

    fprintf(out, "Usage: %s [OPTION]...\n"
            "Chorus audio conferencing bridge.\n\n"
            "Every option can be set in the config file (key = value, the "
            "name with '_'),\nthe environment (CHORUS_<NAME>) or a flag; "
            "flags beat the environment,\nwhich beats the file.\n\n",
            argv0 ? argv0 : "chorus-bridge");
    for (size_t i = 0; i < n; i++) {
        const struct brg_option *o = &t[i];

        brg__config_flag_name(o, flag);
        brg__config_env_name(o, env);
        if (o->type == BRG_OPT_BOOL)
            snprintf(left, sizeof(left), "--[no-]%s", flag + 2);
        else
            snprintf(left, sizeof(left), "%s %s", flag,
                     o->metavar ? o->metavar : "VALUE");
        fprintf(out, "  %-28s %s\n%31s[default: ", left, o->help, "");
        help_default(out, o);
        fprintf(out, "; env %s]\n", env);
    }
    fprintf(out, "  %-28s %s\n  %-28s %s\n", "-h, --help",
            "show this help and exit", "-V, --version",
            "show the version and exit");
    return ferror(out) ? -EIO : 0;
}
