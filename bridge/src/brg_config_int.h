/*
 * brg_config_int.h: internals shared by brg_config.c (the table, value
 * parsing, the file) and brg_config_cli.c (env, flags, help). Private to
 * bridge/src.
 *
 * Thread: as brg_config.h (startup, main thread).
 */
#ifndef BRG_CONFIG_INT_H
#define BRG_CONFIG_INT_H

#include "brg_config.h"

enum {
    WHY_MAX = 160,        /* reason text after a value */
    FLAG_MAX = 64,        /* "--" + option name */
    ENV_MAX = 72,         /* "CHORUS_" + option name */
    FLAG_BASE = 256,      /* getopt val of table row i: FLAG_BASE + 2 i */
};

/* Writes "--media-port" for @o into @buf (FLAG_MAX bytes). */
void brg__config_flag_name(const struct brg_option *o, char *buf);

/* Writes "CHORUS_MEDIA_PORT" for @o into @buf (ENV_MAX bytes). */
void brg__config_env_name(const struct brg_option *o, char *buf);

/* Parses a boolean word (true/false, yes/no, on/off, 1/0, any case) into
 * *@out. Returns false when @v is none of them. */
bool brg__config_parse_bool(const char *v, bool *out);

#endif /* BRG_CONFIG_INT_H */
