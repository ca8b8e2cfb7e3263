/*
 * test_config.c: the option table and what it generates (brg_config.h):
 * defaults, config file (with line numbers in errors), environment, flags,
 * precedence, validation messages, --help, and the API token file.
 * The environment is always passed explicitly, never read from the
 * process, so the tests do not depend on the caller's shell.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brg_config.h"

enum { MAX_ARGS = 16 };

/* A mutable argv built from literals (getopt may permute it). */
struct args {
    int argc;
    char *argv[MAX_ARGS + 1];
};

static struct args mkargs(const char *const *list)
{
    struct args a = { 0 };

    a.argv[a.argc++] = strdup("chorus-bridge");
    for (; *list && a.argc < MAX_ARGS; list++)
        a.argv[a.argc++] = strdup(*list);
    return a;
}

static void freeargs(struct args *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NOARGS ((const char *const[]){ NULL })
#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NOENV ((const char *const[]){ NULL })

/* A public key in both accepted spellings (not the same key). */
#define KEY_B64 "MlzcEoOk0qlcgDJCJ0F4FIhWJuxJc_Al3yiZmK9Pcwc"
#define KEY_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char err[512];

/* brg_config_load with the given flags and environment. */
static int load(struct brg_config *cfg, const char *const *flags,
                const char *const *envp)
{
    struct args a = mkargs(flags);
    int rc;

    err[0] = '\0';
    rc = brg_config_load(cfg, a.argc, a.argv, (char *const *)envp, err,
                         sizeof(err));
    freeargs(&a);
    return rc;
}

/* Writes @text to a fresh temporary file; returns its malloc'd path. */
static char *write_file(const char *text)
{
    char *path = strdup("/tmp/brg-config-XXXXXX");
    int fd = mkstemp(path);

    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Creates a fresh temporary directory; returns its malloc'd path. */
static char *temp_dir(void)
{
    char *path = strdup("/tmp/brg-state-XXXXXX");

    cr_assert_not_null(mkdtemp(path));
    return path;
}

/* ----------------------------------------------------------- defaults -- */

Test(config, defaults)
{
    struct brg_config c;

    cr_assert_eq(load(&c, NOARGS, NOENV), 0, "%s", err);
    cr_expect_str_eq(c.config, "");
    cr_expect_str_eq(c.state_dir, "chorus-state");
    cr_expect_str_eq(c.media_addr, "0.0.0.0");
    cr_expect_eq(c.media_port, 33033);
    cr_expect_str_eq(c.api_addr, "127.0.0.1");
    cr_expect_eq(c.api_port, 8080);
    cr_expect_str_eq(c.api_token, "");
    cr_expect_eq(c.rtp_port_min, 40000);
    cr_expect_eq(c.rtp_port_max, 40999);
    cr_expect_eq(c.workers, 1);
    cr_expect(c.realtime);
    cr_expect_str_eq(c.log_level, "info");
    cr_expect_str_eq(c.log, "");
    cr_expect_str_eq(c.demo_room, "demo");
    cr_expect_eq(c.max_legs, 2000);
    cr_expect(c.overlay);
    cr_expect_eq(c.overlay_port, 33034);
    cr_expect_eq(c.role, BRG_ROLE_AUTO);
    cr_expect_str_eq(c.bootstrap, "");
    cr_expect_eq(c.keepalive_s, 20);
    cr_expect_str_eq(c.login_authority, "");
    cr_expect_str_eq(c.advertise_ip, "");
    brg_config_free(&c);
    brg_config_free(&c);        /* safe on a zeroed struct */
}

Test(config, table_is_consistent)
{
    size_t n;
    const struct brg_option *t = brg_config_options(&n);

    cr_assert_gt(n, 15u);
    for (size_t i = 0; i < n; i++) {
        cr_expect_not_null(t[i].help, "%s", t[i].name);
        cr_expect_not_null(t[i].def, "%s", t[i].name);
        cr_expect_eq(brg_config_find(t[i].name), &t[i]);
        for (size_t j = 0; j < i; j++)
            cr_expect_str_neq(t[i].name, t[j].name);
        for (const char *p = t[i].name; *p; p++)
            cr_expect((*p >= 'a' && *p <= 'z') || *p == '_' ||
                      (*p >= '0' && *p <= '9'), "%s", t[i].name);
    }
    cr_expect_eq(brg_config_find("media-port"), brg_config_find("media_port"));
    cr_expect_null(brg_config_find("media_prot"));
}

/* Every option can be set by its flag to its own default. */
Test(config, every_flag_accepts_its_default)
{
    size_t n;
    const struct brg_option *t = brg_config_options(&n);

    for (size_t i = 0; i < n; i++) {
        struct brg_config c;
        char flag[80];
        int rc;

        if (!t[i].def[0])
            continue;
        snprintf(flag, sizeof(flag), "--%s=%s", t[i].name, t[i].def);
        for (char *p = flag + 2; *p && *p != '='; p++)
            if (*p == '_')
                *p = '-';
        rc = load(&c, ARGS(flag), NOENV);
        cr_expect_eq(rc, 0, "%s: %s", flag, err);
        if (rc == 0)
            brg_config_free(&c);
    }
}

/* --------------------------------------------------------------- help -- */

Test(config, help_lists_every_option)
{
    char *text = NULL;
    size_t len = 0, n;
    FILE *f = open_memstream(&text, &len);
    const struct brg_option *t = brg_config_options(&n);
    struct brg_config c;

    cr_assert_eq(brg_config_help(f, "chorus-bridge"), 0);
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        char flag[80], env[80];
        size_t k;

        snprintf(flag, sizeof(flag), "--%s", t[i].name);
        for (char *p = flag; *p; p++)
            if (*p == '_')
                *p = '-';
        snprintf(env, sizeof(env), "CHORUS_%s", t[i].name);
        for (k = 0; env[k]; k++)
            if (env[k] >= 'a' && env[k] <= 'z')
                env[k] = (char)(env[k] - 'a' + 'A');
        cr_expect(strstr(text, flag + 2), "help lacks %s", flag);
        cr_expect(strstr(text, env), "help lacks %s", env);
        cr_expect(strstr(text, t[i].help), "help lacks help of %s", t[i].name);
    }
    cr_expect(strstr(text, "--help"));
    cr_expect(strstr(text, "--version"));
    cr_expect(strstr(text, "--[no-]realtime"));
    cr_expect(strstr(text, "--media-port PORT"));
    free(text);

    cr_expect_eq(load(&c, ARGS("--help"), NOENV), BRG_CONFIG_HELP);
    brg_config_free(&c);
    cr_expect_eq(load(&c, ARGS("-h"), NOENV), BRG_CONFIG_HELP);
    brg_config_free(&c);
    cr_expect_eq(load(&c, ARGS("--version"), NOENV), BRG_CONFIG_VERSION);
    brg_config_free(&c);
    cr_expect_eq(load(&c, ARGS("-V"), NOENV), BRG_CONFIG_VERSION);
    brg_config_free(&c);
    cr_expect_eq(strncmp(brg_config_version(), "chorus-bridge ", 14), 0);
}

/* --------------------------------------------------------------- file -- */

Test(config, file_parse)
{
    char *path = write_file(
        "# Chorus bridge\n"
        "\n"
        "media_port = 5004\n"
        "  api-port=9000   # trailing comment\n"
        "state_dir = /var/lib/chorus\n"
        "realtime = off\n"
        "demo_room = \"\"\n"
        "log = \"bridge.udp=debug\"\n"
        "bootstrap = " KEY_B64 "@a.example:33033, " KEY_HEX "@[::1]:5\n"
        "role = supernode\n"
        "\t# indented comment\n"
        "media_port = 5006\n");         /* later lines win */
    struct brg_config c;
    char flag[300];

    snprintf(flag, sizeof(flag), "--config=%s", path);
    cr_assert_eq(load(&c, ARGS(flag), NOENV), 0, "%s", err);
    cr_expect_str_eq(c.config, path);
    cr_expect_eq(c.media_port, 5006);
    cr_expect_eq(c.api_port, 9000);
    cr_expect_str_eq(c.state_dir, "/var/lib/chorus");
    cr_expect_not(c.realtime);
    cr_expect_str_eq(c.demo_room, "");
    cr_expect_str_eq(c.log, "bridge.udp=debug");
    cr_expect_str_eq(c.bootstrap, KEY_B64 "@a.example:33033, " KEY_HEX "@[::1]:5");
    cr_expect_eq(c.role, BRG_ROLE_SUPERNODE);
    brg_config_free(&c);
    unlink(path);
    free(path);
}

struct file_error {
    const char *text;
    const char *want;       /* message after "<path>:" */
};

Test(config, file_errors_name_the_line)
{
    static const struct file_error cases[] = {
        { "media_port = 1\n# ok\nmedia_prot = 5\n",
          "3: unknown option 'media_prot'" },
        { "\nmedia_port = 70000\n",
          "2: media_port: 70000 is not a port (1-65535)" },
        { "workers = 1\nworkers = 0\n",
          "2: workers: 0 is out of range (1-64)" },
        { "a\n", "1: expected 'key = value'" },
        { "realtime = maybe\n",
          "1: realtime: maybe is not a boolean (true/false, yes/no, on/off, 1/0)" },
        { "log = \"bridge=debug\n", "1: log: unterminated quote" },
        { "config = /etc/other\n",
          "1: 'config' cannot be set in a config file" },
        { "api_token = short\n",
          "1: api_token: value is too short (at least 16 characters)" },
        { "role = boss\n", "1: role: boss is not one of auto|supernode|peer" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_file(cases[i].text);
        char want[600];
        struct brg_config c;

        cr_assert_eq(brg_config_init(&c), 0);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
        cr_expect_eq(brg_config_read_file(&c, path, err, sizeof(err)), -EINVAL,
                     "case %zu", i);
        cr_expect_str_eq(err, want, "case %zu", i);
        brg_config_free(&c);
        unlink(path);
        free(path);
    }
}

Test(config, missing_file)
{
    struct brg_config c;

    cr_expect_eq(load(&c, ARGS("--config", "/nonexistent/chorus.conf"), NOENV),
                 -ENOENT);
    cr_expect_str_eq(err, "/nonexistent/chorus.conf: No such file or directory");
}

Test(config, nul_byte_in_file)
{
    char *path = write_file("media_port = 1");
    FILE *f = fopen(path, "ab");
    struct brg_config c;

    fwrite("\0\n", 1, 2, f);
    fclose(f);
    cr_assert_eq(brg_config_init(&c), 0);
    cr_expect_eq(brg_config_read_file(&c, path, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, ":1: NUL byte"), "%s", err);
    brg_config_free(&c);
    unlink(path);
    free(path);
}

/* ------------------------------------------------ env, flags, precedence -- */

Test(config, env_override)
{
    struct brg_config c;

    cr_assert_eq(load(&c, NOARGS, ENV("CHORUS_MEDIA_PORT=5000",
                                      "CHORUS_REALTIME=no",
                                      "CHORUS_LOG=bridge.api=trace",
                                      "CHORUS_ROLE=peer",
                                      "CHORUS_UNRELATED=1",
                                      "PATH=/bin")), 0, "%s", err);
    cr_expect_eq(c.media_port, 5000);
    cr_expect_not(c.realtime);
    cr_expect_str_eq(c.log, "bridge.api=trace");
    cr_expect_eq(c.role, BRG_ROLE_PEER);
    brg_config_free(&c);
}

Test(config, flag_forms)
{
    struct brg_config c;

    cr_assert_eq(load(&c, ARGS("--media-port", "5000", "--api-port=5001",
                               "--no-realtime", "--workers=4",
                               "--demo-room", ""), NOENV), 0, "%s", err);
    cr_expect_eq(c.media_port, 5000);
    cr_expect_eq(c.api_port, 5001);
    cr_expect_not(c.realtime);
    cr_expect_eq(c.workers, 4);
    cr_expect_str_eq(c.demo_room, "");
    brg_config_free(&c);

    cr_assert_eq(load(&c, ARGS("--realtime"), ENV("CHORUS_REALTIME=0")), 0);
    cr_expect(c.realtime);
    brg_config_free(&c);
    cr_assert_eq(load(&c, ARGS("--realtime=false"), NOENV), 0);
    cr_expect_not(c.realtime);
    brg_config_free(&c);
    cr_assert_eq(load(&c, ARGS("--no-realtime", "--realtime"), NOENV), 0);
    cr_expect(c.realtime);      /* last flag wins */
    brg_config_free(&c);
    cr_assert_eq(load(&c, ARGS("--realtime", "off", "--workers", "2"), NOENV),
                 0, "%s", err);
    cr_expect_not(c.realtime);  /* a boolean word after the flag */
    cr_expect_eq(c.workers, 2);
    brg_config_free(&c);
    cr_expect_eq(load(&c, ARGS("--realtime", "maybe"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "unexpected argument 'maybe' (try --help)");
}

Test(config, precedence_flag_env_file)
{
    char *path = write_file("media_port = 1000\napi_port = 1001\n"
                            "workers = 2\n");
    char cfgenv[300];
    struct brg_config c;

    snprintf(cfgenv, sizeof(cfgenv), "CHORUS_CONFIG=%s", path);
    /* file only */
    cr_assert_eq(load(&c, NOARGS, ENV(cfgenv)), 0, "%s", err);
    cr_expect_eq(c.media_port, 1000);
    cr_expect_eq(c.api_port, 1001);
    cr_expect_eq(c.workers, 2);
    brg_config_free(&c);
    /* env beats file */
    cr_assert_eq(load(&c, NOARGS, ENV(cfgenv, "CHORUS_MEDIA_PORT=2000",
                                      "CHORUS_WORKERS=3")), 0, "%s", err);
    cr_expect_eq(c.media_port, 2000);
    cr_expect_eq(c.api_port, 1001);
    cr_expect_eq(c.workers, 3);
    brg_config_free(&c);
    /* flags beat env beat file */
    cr_assert_eq(load(&c, ARGS("--media-port", "3000"),
                      ENV(cfgenv, "CHORUS_MEDIA_PORT=2000",
                          "CHORUS_WORKERS=3")), 0, "%s", err);
    cr_expect_eq(c.media_port, 3000);
    cr_expect_eq(c.api_port, 1001);
    cr_expect_eq(c.workers, 3);
    brg_config_free(&c);
    /* --config beats CHORUS_CONFIG */
    cr_assert_eq(load(&c, ARGS("--config", "/nonexistent.conf"), ENV(cfgenv)),
                 -ENOENT);
    unlink(path);
    free(path);
}

/* Inline arrays, not pointers: Criterion copies parameters into a fresh
 * process, where pointers into this one mean nothing. */
struct bad_value {
    char flag[24];
    char value[128];
    char want[256];
};

static const struct bad_value bad_values[] = {
    { "--media-port", "70000", "--media-port: 70000 is not a port (1-65535)" },
    { "--media-port", "0", "--media-port: 0 is not a port (1-65535)" },
    { "--api-port", "80x", "--api-port: 80x is not a port (1-65535)" },
    { "--rtp-port-min", "-1", "--rtp-port-min: -1 is not a port (1-65535)" },
    { "--workers", "0", "--workers: 0 is out of range (1-64)" },
    { "--workers", "abc", "--workers: abc is not an integer" },
    { "--workers", " 3", "--workers:  3 is not an integer" },
    { "--max-legs", "99999999999999999999",
      "--max-legs: 99999999999999999999 is not an integer" },
    { "--keepalive-s", "", "--keepalive-s: '' is not an integer" },
    { "--realtime", "maybe",
      "--realtime: maybe is not a boolean (true/false, yes/no, on/off, 1/0)" },
    { "--media-addr", "example.com",
      "--media-addr: example.com is not an IPv4 or IPv6 address" },
    { "--api-addr", "1.2.3.256",
      "--api-addr: 1.2.3.256 is not an IPv4 or IPv6 address" },
    { "--role", "boss", "--role: boss is not one of auto|supernode|peer" },
    { "--log-level", "loud", "--log-level: loud is not a log level (error, "
      "warn, info, debug, trace, off)" },
    { "--log", "bridge.udp=loud", "--log: bridge.udp=loud is not a log spec: "
      "unknown level 'loud' in 'bridge.udp=loud'" },
    { "--demo-room", "a/b", "--demo-room: a/b is not a room name (1-64 "
      "characters of A-Z a-z 0-9 . _ ~ -)" },
    { "--bootstrap", "a:1,b", "--bootstrap: a:1,b is not a KEY@HOST:PORT list "
      "('a:1' is not a public key @ host:port)" },
    { "--bootstrap", KEY_B64 "@a:1,b", "--bootstrap: " KEY_B64 "@a:1,b is not "
      "a KEY@HOST:PORT list ('b' is not a public key @ host:port)" },
    { "--bootstrap", KEY_B64 "@::1:5", "--bootstrap: " KEY_B64 "@::1:5 is not "
      "a KEY@HOST:PORT list ('" KEY_B64 "@::1:5' is not a public key @ "
      "host:port)" },
    { "--bootstrap", "short@1.2.3.4:5", "--bootstrap: short@1.2.3.4:5 is not "
      "a KEY@HOST:PORT list ('short@1.2.3.4:5' is not a public key @ "
      "host:port)" },
    { "--bootstrap", KEY_B64 "@1.2.3.4", "--bootstrap: " KEY_B64 "@1.2.3.4 is "
      "not a KEY@HOST:PORT list ('" KEY_B64 "@1.2.3.4' is not a public key @ "
      "host:port)" },
    { "--overlay-port", "70000", "--overlay-port: 70000 is out of range "
      "(0-65535)" },
    { "--overlay", "maybe",
      "--overlay: maybe is not a boolean (true/false, yes/no, on/off, 1/0)" },
    { "--login-authority", "nope", "--login-authority: nope is not a public "
      "key (43 base64url characters or 64 hex digits)" },
    { "--advertise-ip", "example.com",
      "--advertise-ip: example.com is not an IPv4 or IPv6 address" },
    { "--state-dir", "", "--state-dir: '' must not be empty" },
    { "--api-token", "tiny-secret",
      "--api-token: value is too short (at least 16 characters)" },
    { "--api-token", "has a space in the token",
      "--api-token: value must be printable ASCII without blanks" },
};

ParameterizedTestParameters(config, bad_values)
{
    return cr_make_param_array(struct bad_value, (void *)bad_values,
                               sizeof(bad_values) / sizeof(bad_values[0]));
}

ParameterizedTest(const struct bad_value *b, config, bad_values)
{
    struct brg_config c;
    char env[400], want[600];
    const char *p;
    size_t k;

    snprintf(env, sizeof(env), "%s=%s", b->flag, b->value);
    cr_expect_eq(load(&c, ARGS(env), NOENV), -EINVAL);
    cr_expect_str_eq(err, b->want);
    if (strcmp(b->flag, "--realtime") != 0 &&   /* bools: only --flag=value */
        strcmp(b->flag, "--overlay") != 0) {
        cr_expect_eq(load(&c, ARGS(b->flag, b->value), NOENV), -EINVAL);
        cr_expect_str_eq(err, b->want);
    }

    /* the same value from the environment names the variable */
    k = (size_t)snprintf(env, sizeof(env), "CHORUS_");
    for (p = b->flag + 2; *p; p++)
        env[k++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z'
                                            ? *p - 'a' + 'A' : *p);
    env[k] = '\0';
    snprintf(want, sizeof(want), "%s%s", env, b->want + strlen(b->flag));
    snprintf(env + k, sizeof(env) - k, "=%s", b->value);
    cr_expect_eq(load(&c, NOARGS, ENV(env)), -EINVAL);
    cr_expect_str_eq(err, want);
}

Test(config, secret_never_echoed)
{
    struct brg_config c;

    cr_expect_eq(load(&c, ARGS("--api-token", "hunter2 hunter2 hunter2"),
                      NOENV), -EINVAL);
    cr_expect_null(strstr(err, "hunter2"), "%s", err);
}

Test(config, command_line_errors)
{
    struct brg_config c;

    cr_expect_eq(load(&c, ARGS("--nope"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "unknown option '--nope' (try --help)");
    cr_expect_eq(load(&c, ARGS("-x"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "unknown option '-x' (try --help)");
    cr_expect_eq(load(&c, ARGS("--media-port"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "option '--media-port' needs a value");
    cr_expect_eq(load(&c, ARGS("extra"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "unexpected argument 'extra' (try --help)");
    cr_expect_eq(load(&c, ARGS("--no-realtime=yes"), NOENV), -EINVAL);
    cr_expect_eq(load(&c, ARGS("--no-media-port"), NOENV), -EINVAL);
}

Test(config, cross_field_rules)
{
    struct brg_config c;

    cr_expect_eq(load(&c, ARGS("--rtp-port-min", "41000"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "--rtp-port-min: 41000 is above --rtp-port-max (40999)");
    cr_expect_eq(load(&c, ARGS("--media-port", "40500"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "--media-port: 40500 is inside the RTP port range "
                     "(40000-40999)");
    cr_expect_eq(load(&c, ARGS("--api-port", "33033"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "--api-port: 33033 is also the media port (TCP)");
    /* The overlay's port, UDP and TCP on media_addr, must be its own. */
    cr_expect_eq(load(&c, ARGS("--overlay-port", "33033"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "--overlay-port: 33033 is also the media port");
    cr_expect_eq(load(&c, ARGS("--overlay-port", "40001"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "--overlay-port: 40001 is inside the RTP port range "
                     "(40000-40999)");
    cr_expect_eq(load(&c, ARGS("--overlay-port", "8080"), NOENV), -EINVAL);
    cr_expect_str_eq(err, "--overlay-port: 8080 is also the API port (TCP)");
    cr_assert_eq(load(&c, ARGS("--overlay-port", "8080", "--no-overlay"), NOENV),
                 0, "%s", err);
    cr_expect_not(c.overlay);
    brg_config_free(&c);
    cr_assert_eq(load(&c, ARGS("--overlay-port", "0"), NOENV), 0, "%s", err);
    cr_expect_eq(c.overlay_port, 0);
    brg_config_free(&c);
    /* distinct specific addresses may share the port number */
    cr_assert_eq(load(&c, ARGS("--api-port", "33033", "--media-addr",
                               "192.0.2.1"), NOENV), 0, "%s", err);
    brg_config_free(&c);
}

Test(config, set_by_name)
{
    struct brg_config c;

    cr_assert_eq(brg_config_init(&c), 0);
    cr_expect_eq(brg_config_set(&c, "keepalive-s", "30", NULL, err,
                                sizeof(err)), 0);
    cr_expect_eq(c.keepalive_s, 30);
    cr_expect_eq(brg_config_set(&c, "nope", "1", NULL, err, sizeof(err)),
                 -ENOENT);
    cr_expect_str_eq(err, "nope: unknown option 'nope'");
    cr_expect_eq(brg_config_set(&c, "workers", "65", NULL, err, sizeof(err)),
                 -EINVAL);
    cr_expect_str_eq(err, "workers: 65 is out of range (1-64)");
    brg_config_free(&c);
}

struct hostport_case {
    const char *in;
    int rc;
    const char *host;
    uint16_t port;
};

Test(config, parse_hostport)
{
    static const struct hostport_case cases[] = {
        { "a.example:1", 0, "a.example", 1 },
        { "192.0.2.7:33033", 0, "192.0.2.7", 33033 },
        { "[::1]:5", 0, "::1", 5 },
        { "[2001:db8::1]:65535", 0, "2001:db8::1", 65535 },
        { "host", -EINVAL, NULL, 0 },
        { "host:", -EINVAL, NULL, 0 },
        { ":80", -EINVAL, NULL, 0 },
        { "host:0", -EINVAL, NULL, 0 },
        { "host:65536", -EINVAL, NULL, 0 },
        { "host:+80", -EINVAL, NULL, 0 },
        { "host:8o", -EINVAL, NULL, 0 },
        { "::1:5", -EINVAL, NULL, 0 },
        { "[::1]", -EINVAL, NULL, 0 },
        { "[::1]5", -EINVAL, NULL, 0 },
        { "[]:5", -EINVAL, NULL, 0 },
        { "[zz]:5", -EINVAL, NULL, 0 },
        { "ho st:5", -EINVAL, NULL, 0 },
        { "", -EINVAL, NULL, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[64] = "";
        uint16_t port = 0;
        int rc = brg_config_parse_hostport(cases[i].in, strlen(cases[i].in),
                                           host, sizeof(host), &port);

        cr_expect_eq(rc, cases[i].rc, "'%s'", cases[i].in);
        if (rc == 0 && cases[i].rc == 0) {
            cr_expect_str_eq(host, cases[i].host);
            cr_expect_eq(port, cases[i].port);
        }
    }
    {
        char small[4];
        uint16_t port;

        cr_expect_eq(brg_config_parse_hostport("abcd:1", 6, small,
                                               sizeof(small), &port), -EINVAL);
    }
}

/* --------------------------------------------------------------- token -- */

static bool is_b64url(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

Test(config, token_created_0600_and_stable)
{
    char *dir = temp_dir(), state[300], file[320];
    char *t1 = NULL, *t2 = NULL;
    struct stat st;

    snprintf(state, sizeof(state), "%s/nested/state", dir);
    snprintf(file, sizeof(file), "%s/api-token", state);
    cr_assert_eq(brg_config_load_or_create_token(state, &t1), 0);
    cr_expect_eq(strlen(t1), 43u);
    cr_expect(is_b64url(t1), "%s", t1);
    cr_assert_eq(stat(file, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    cr_assert_eq(stat(state, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700, "dir mode %o", st.st_mode & 0777);

    cr_assert_eq(brg_config_load_or_create_token(state, &t2), 0);
    cr_expect_str_eq(t1, t2);
    free(t2);

    /* loose permissions are tightened, the token kept */
    chmod(file, 0644);
    cr_assert_eq(brg_config_load_or_create_token(state, &t2), 0);
    cr_expect_str_eq(t1, t2);
    cr_assert_eq(stat(file, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    free(t2);
    free(t1);
    free(dir);
}

Test(config, token_differs_between_state_dirs)
{
    char *a = temp_dir(), *b = temp_dir();
    char *ta, *tb;

    cr_assert_eq(brg_config_load_or_create_token(a, &ta), 0);
    cr_assert_eq(brg_config_load_or_create_token(b, &tb), 0);
    cr_expect_str_neq(ta, tb);
    free(ta);
    free(tb);
    free(a);
    free(b);
}

Test(config, token_file_garbage)
{
    char *dir = temp_dir(), file[300];
    char *t = NULL;
    FILE *f;

    snprintf(file, sizeof(file), "%s/api-token", dir);
    f = fopen(file, "w");
    fputs("not a token!\n", f);
    fclose(f);
    cr_expect_eq(brg_config_load_or_create_token(dir, &t), -EBADMSG);
    cr_expect_null(t);
    f = fopen(file, "w");
    fputs("short\n", f);
    fclose(f);
    cr_expect_eq(brg_config_load_or_create_token(dir, &t), -EBADMSG);
    /* a hand-written token of valid characters is accepted */
    f = fopen(file, "w");
    fputs("AAAAAAAAAAAAAAAAAAAAAAAA_-\n", f);
    fclose(f);
    cr_expect_eq(brg_config_load_or_create_token(dir, &t), 0);
    cr_expect_str_eq(t, "AAAAAAAAAAAAAAAAAAAAAAAA_-");
    free(t);
    free(dir);
}

Test(config, token_state_dir_is_a_file)
{
    char *path = write_file("x");
    char *t = NULL;

    cr_expect_eq(brg_config_load_or_create_token(path, &t), -ENOTDIR);
    unlink(path);
    free(path);
}

/* Processes starting together agree on one token. */
Test(config, token_race_agrees)
{
    char *dir = temp_dir();
    char tokens[6][64];
    int fds[6][2];
    pid_t pid[6];

    for (int i = 0; i < 6; i++) {
        cr_assert_eq(pipe(fds[i]), 0);
        pid[i] = fork();
        cr_assert(pid[i] >= 0);
        if (pid[i] == 0) {
            char *t = NULL;

            if (brg_config_load_or_create_token(dir, &t) != 0)
                _exit(1);
            if (write(fds[i][1], t, strlen(t) + 1) < 0)
                _exit(2);
            _exit(0);
        }
        close(fds[i][1]);
    }
    for (int i = 0; i < 6; i++) {
        int status;
        ssize_t n;

        cr_assert_eq(waitpid(pid[i], &status, 0), pid[i]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        n = read(fds[i][0], tokens[i], sizeof(tokens[i]) - 1);
        cr_assert_gt(n, 0);
        tokens[i][n] = '\0';
        close(fds[i][0]);
        cr_expect_str_eq(tokens[i], tokens[0]);
    }
    free(dir);
}

Test(config, make_state_dir)
{
    char *dir = temp_dir(), deep[300];
    struct stat st;

    snprintf(deep, sizeof(deep), "%s/a/b/c/", dir);
    cr_expect_eq(brg_config_make_state_dir(deep), 0);
    cr_expect_eq(brg_config_make_state_dir(deep), 0);
    cr_assert_eq(stat(deep, &st), 0);
    cr_expect(S_ISDIR(st.st_mode));
    cr_expect_eq(brg_config_make_state_dir(""), -EINVAL);
    free(dir);
}
