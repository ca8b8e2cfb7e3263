/*
 * api_schema.c: the parameter-table validator (see api_schema.h).
 *
 * Untrusted input: everything here returns an error for bad bodies and
 * never asserts on them. Messages never echo values, only field names
 * (which are sanitised to printable ASCII before they reach a response).
 */
#include "api_schema.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

size_t api__utf8_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++) {
        /* Continuation bytes (10xxxxxx) do not start a code point. */
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

/* Copies @name into @dst as printable ASCII: a field name comes from the
 * client and ends up in a JSON response and possibly a log line. */
static void set_field(struct api_schema_error *err, const char *name)
{
    size_t i;

    for (i = 0; name[i] && i + 1 < sizeof(err->field); i++) {
        unsigned char c = (unsigned char)name[i];
        err->field[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    err->field[i] = '\0';
}

static int fail(struct api_schema_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct api_schema_error *err, const char *field, const char *fmt, ...)
{
    va_list ap;

    set_field(err, field ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static const struct api_param *find_param(const struct api_schema *sch, const char *key)
{
    for (size_t i = 0; i < sch->n_params; i++) {
        if (strcmp(sch->params[i].name, key) == 0)
            return &sch->params[i];
    }
    return NULL;
}

static int check_int(const struct api_param *p, const json_t *v, struct api_schema_error *err)
{
    json_int_t x;

    if (!json_is_integer(v))
        return fail(err, p->name, "%s must be an integer", p->name);
    x = json_integer_value(v);
    if (p->n_one_of) {
        for (size_t i = 0; i < p->n_one_of; i++) {
            if (p->one_of[i] == x)
                return 0;
        }
        return fail(err, p->name, "%s is not one of the allowed values", p->name);
    }
    if (x < p->min || x > p->max)
        return fail(err, p->name, "%s must be between %" PRId64 " and %" PRId64,
                    p->name, p->min, p->max);
    return 0;
}

static int check_number(const struct api_param *p, const json_t *v, struct api_schema_error *err)
{
    double x;

    if (!json_is_number(v))
        return fail(err, p->name, "%s must be a number", p->name);
    x = json_number_value(v);
    /* Written so that a NaN (impossible from JSON text, but cheap to rule
     * out) fails too. */
    if (!(x >= p->fmin && x <= p->fmax))
        return fail(err, p->name, "%s must be between %g and %g", p->name, p->fmin, p->fmax);
    return 0;
}

static int check_string(const struct api_param *p, const json_t *v, struct api_schema_error *err)
{
    const char *s;
    size_t len;
    char why[96] = "";

    if (!json_is_string(v))
        return fail(err, p->name, "%s must be a string", p->name);
    s = json_string_value(v);
    /* jansson strings may hold NUL only with JSON_ALLOW_NUL, which we do
     * not pass; the length check still uses the counted length so an
     * embedded NUL could never shorten a value unnoticed. */
    if (strlen(s) != json_string_length(v))
        return fail(err, p->name, "%s must not contain NUL characters", p->name);
    if (p->choices) {
        for (const char *const *c = p->choices; *c; c++) {
            if (strcmp(*c, s) == 0)
                return 0;
        }
        return fail(err, p->name, "%s is not one of the allowed values", p->name);
    }
    len = api__utf8_len(s);
    if ((int64_t)len < p->min || (int64_t)len > p->max)
        return fail(err, p->name, "%s must be %" PRId64 " to %" PRId64 " characters long",
                    p->name, p->min, p->max);
    if (p->check && !p->check(s, why, sizeof(why)))
        return fail(err, p->name, "%s is invalid: %s", p->name, why);
    return 0;
}

static int check_int_array(const struct api_param *p, const json_t *v, struct api_schema_error *err)
{
    size_t i;
    json_t *e;
    char name[API_FIELD_MAX];

    if (!json_is_array(v))
        return fail(err, p->name, "%s must be an array", p->name);
    if (json_array_size(v) > p->max_items)
        return fail(err, p->name, "%s must have at most %zu items", p->name, p->max_items);
    json_array_foreach(v, i, e) {
        json_int_t x;

        snprintf(name, sizeof(name), "%s[%zu]", p->name, i);
        if (!json_is_integer(e))
            return fail(err, name, "%s must be an integer", name);
        x = json_integer_value(e);
        if (x < p->min || x > p->max)
            return fail(err, name, "%s must be between %" PRId64 " and %" PRId64,
                        name, p->min, p->max);
    }
    return 0;
}

static int check_value(const struct api_param *p, const json_t *v, struct api_schema_error *err)
{
    switch (p->type) {
    case API_T_BOOL:
        if (!json_is_boolean(v))
            return fail(err, p->name, "%s must be true or false", p->name);
        return 0;
    case API_T_INT:
        return check_int(p, v, err);
    case API_T_NUMBER:
        return check_number(p, v, err);
    case API_T_STRING:
        return check_string(p, v, err);
    case API_T_INT_ARRAY:
        return check_int_array(p, v, err);
    }
    /* A table with an unknown type is a bug in this module, but the
     * request is still refused rather than passed on unchecked. */
    return fail(err, p->name, "%s cannot be validated", p->name);
}

/* Adds the defaults of absent parameters to @out. */
static int apply_defaults(const struct api_schema *sch, json_t *out)
{
    for (size_t i = 0; i < sch->n_params; i++) {
        const struct api_param *p = &sch->params[i];
        json_t *v;

        if (!p->def || json_object_get(out, p->name))
            continue;
        v = json_loads(p->def, JSON_DECODE_ANY, NULL);
        if (!v || json_object_set_new(out, p->name, v) != 0)
            return -ENOMEM;
    }
    return 0;
}

int api__schema_check(const struct api_schema *sch, const json_t *body,
                      json_t **out, struct api_schema_error *err)
{
    const char *key;
    json_t *v;
    json_t *copy = NULL;
    int rc;

    *out = NULL;
    err->field[0] = '\0';
    err->detail[0] = '\0';
    if (!json_is_object(body)) {
        snprintf(err->detail, sizeof(err->detail), "the request body must be a JSON object");
        return -EBADMSG;
    }
    if (sch->at_least_one && json_object_size(body) == 0)
        return fail(err, NULL, "at least one field must be given");

    /* Unknown fields first: a misspelt optional field would otherwise be
     * silently ignored, which is the failure this check exists for. */
    json_object_foreach((json_t *)body, key, v) {
        if (!find_param(sch, key))
            return fail(err, key, "unknown field");
    }
    for (size_t i = 0; i < sch->n_params; i++) {
        const struct api_param *p = &sch->params[i];

        v = json_object_get(body, p->name);
        if (!v) {
            if (p->flags & API_PF_REQUIRED)
                return fail(err, p->name, "%s is required", p->name);
            continue;
        }
        rc = check_value(p, v, err);
        if (rc < 0)
            return rc;
    }

    copy = json_deep_copy(body);
    if (!copy)
        return -ENOMEM;
    rc = apply_defaults(sch, copy);
    if (rc < 0)
        goto out_free;
    if (sch->fixup) {
        rc = sch->fixup(copy, err);
        if (rc < 0)
            goto out_free;
    }
    *out = copy;
    return 0;

out_free:
    json_decref(copy);
    return rc;
}
